//! AMQP topic-exchange binding patterns, with RabbitMQ's semantics.
//!
//! Routing keys and patterns are lists of words separated by `.`; in a
//! pattern the whole word `*` matches exactly one word and the whole word `#`
//! matches zero or more words. Every other word, including `a*` or `#b`,
//! matches only itself, byte for byte. Words are split the way RabbitMQ's
//! `split_topic_key` does: the empty string is *zero* words, and every `.`
//! separates two words that may be empty, so `"a..b"` is `["a", "", "b"]` and
//! `"."` is `["", ""]`. Hence `""` is matched by `""`, `#`, `#.#` but not by
//! `*` or `*.#`, and `*` matches `"a"` but not `""`.
//!
//! Matching simulates the pattern as a nondeterministic automaton, one step
//! per key word, so it costs O(pattern words × key words) whatever the mix of
//! `#` and `*`: no backtracking.

/// The AMQP `shortstr` limit, which bounds binding keys on the wire.
const MAX_PATTERN_LEN: usize = 255;

/// A parsed topic binding pattern such as `"stock.*.nyse"` or `"audit.#"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    source: String,
    words: Vec<Word>,
}

/// Why a string was refused as a topic pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Longer than an AMQP short string, so no client could have sent it.
    #[error("topic pattern is {len} bytes long; the limit is {max} bytes")]
    TooLong {
        /// Length of the refused pattern in bytes.
        len: usize,
        /// The limit: 255, the longest AMQP short string.
        max: usize,
    },
}

impl TopicPattern {
    /// Parses `pattern`; any string of at most 255 bytes is a valid pattern.
    pub fn parse(pattern: &str) -> Result<TopicPattern, PatternError> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong {
                len: pattern.len(),
                max: MAX_PATTERN_LEN,
            });
        }
        Ok(TopicPattern {
            source: pattern.to_owned(),
            words: compile(pattern),
        })
    }

    /// Whether a message published with `routing_key` is routed by this pattern.
    pub fn matches(&self, routing_key: &str) -> bool {
        let mut active = vec![false; self.words.len() + 1];
        active[0] = true;
        self.close(&mut active);
        for key_word in split_words(routing_key) {
            active = self.step(&active, key_word);
            if !active.contains(&true) {
                return false;
            }
        }
        active[self.words.len()]
    }

    /// The pattern exactly as it was given to [`TopicPattern::parse`].
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Advances every active state over one key word.
    fn step(&self, active: &[bool], key_word: &str) -> Vec<bool> {
        let mut next = vec![false; active.len()];
        for (i, word) in self.words.iter().enumerate() {
            if !active[i] {
                continue;
            }
            match word {
                // `#` swallows the word and stays put, to swallow more.
                Word::Hash => next[i] = true,
                Word::Star => next[i + 1] = true,
                Word::Literal(lit) => next[i + 1] |= lit == key_word,
            }
        }
        self.close(&mut next);
        next
    }

    /// Adds the states reachable without consuming a word: a `#` may match
    /// nothing. One forward pass suffices because these moves only go forward.
    fn close(&self, active: &mut [bool]) {
        for (i, word) in self.words.iter().enumerate() {
            if active[i] && *word == Word::Hash {
                active[i + 1] = true;
            }
        }
    }
}

/// One word of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Literal(String),
    Star,
    Hash,
}

/// Turns a pattern into words, folding runs of `#` into one: `#.#` matches
/// exactly what `#` matches, and fewer states keep matching cheap.
fn compile(pattern: &str) -> Vec<Word> {
    let mut words: Vec<Word> = Vec::new();
    for text in split_words(pattern) {
        let word = match text {
            "#" => Word::Hash,
            "*" => Word::Star,
            _ => Word::Literal(text.to_owned()),
        };
        if !(word == Word::Hash && words.last() == Some(&Word::Hash)) {
            words.push(word);
        }
    }
    words
}

/// Splits on `.` as RabbitMQ does: the empty string has no words at all,
/// while any other string has one more word than it has dots.
fn split_words(s: &str) -> impl Iterator<Item = &str> {
    s.split('.').take(if s.is_empty() { 0 } else { usize::MAX })
}
