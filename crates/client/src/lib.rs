//! A Rust client for Hermod's HTTP/JSON API, used by the `hermod` CLI and
//! the end-to-end tests.
