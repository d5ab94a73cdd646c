//! Exchanges: routers that decide which destinations a published message is
//! appended to. `fanout` routes to every binding, `direct` to bindings whose
//! key equals the routing key, `topic` to bindings whose pattern (`*`, `#`)
//! matches it, and `headers` to bindings whose filter policy matches the
//! message's attributes. Any binding may also carry a filter policy, on the
//! attributes or on the JSON body (an SNS subscription's filter policy on a
//! fanout exchange is such a binding).
//!
//! Routing is pure: it reports the destinations a message goes to and, for
//! the delivery trace, every binding that did not match and why. A message
//! that matches no binding is unroutable; what happens to it (reject, or an
//! alternate destination) is the caller's policy.

use crate::filter::{AttributeValue, FilterPolicy, PolicyError, Scope};
use crate::pattern::{PatternError, TopicPattern};

/// How an exchange matches bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    /// Every binding.
    Fanout,
    /// Bindings whose key equals the routing key.
    Direct,
    /// Bindings whose topic pattern matches the routing key.
    Topic,
    /// Bindings whose filter policy matches the attributes.
    Headers,
}

/// What a binding's key is, by exchange kind.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Any,
    Exact(String),
    Pattern(TopicPattern),
}

/// A binding from an exchange to a destination (a queue, a topic, later a
/// push endpoint), by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    destination: String,
    key: Key,
    filter: Option<(FilterPolicy, Scope)>,
}

/// Why a binding was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// The topic pattern is not valid.
    #[error("binding key: {0}")]
    Pattern(#[from] PatternError),
    /// The filter policy is not valid.
    #[error("filter policy: {0}")]
    Policy(#[from] PolicyError),
    /// A `headers` exchange routes by filter policy only.
    #[error("a headers exchange needs a filter policy on the attributes")]
    HeadersNeedFilter,
    /// The binding is already there.
    #[error("{destination} is already bound with this key and filter")]
    Duplicate {
        /// The destination of the existing binding.
        destination: String,
    },
}

/// A message as routing sees it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The routing key (AMQP) or subject; empty when there is none.
    pub routing_key: &'a str,
    /// Attributes (headers) with their types.
    pub attributes: &'a [(&'a str, AttributeValue<'a>)],
    /// The payload, for filter policies on the body.
    pub body: &'a [u8],
}

/// Why a binding did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The routing key did not equal or match the binding key.
    Key,
    /// The filter policy did not match.
    Filter,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routed<'a> {
    /// Destinations, each once, in the order of their first matching binding.
    pub destinations: Vec<&'a str>,
    /// Bindings that did not match: destination and why.
    pub missed: Vec<(&'a str, Miss)>,
}

impl Routed<'_> {
    /// Whether the message matched no binding.
    pub fn is_unroutable(&self) -> bool {
        self.destinations.is_empty()
    }
}

/// An exchange and its bindings.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    kind: ExchangeKind,
    bindings: Vec<Binding>,
}

impl Exchange {
    /// An exchange of `kind` with no bindings.
    pub fn new(kind: ExchangeKind) -> Exchange {
        Exchange {
            kind,
            bindings: Vec::new(),
        }
    }

    /// The exchange's kind.
    pub fn kind(&self) -> ExchangeKind {
        self.kind
    }

    /// Binds `destination` with a binding key (ignored by `fanout` and
    /// `headers`) and an optional filter policy, checked here so that a bad
    /// binding is refused before any message flows.
    pub fn bind(
        &mut self,
        destination: &str,
        key: &str,
        filter: Option<(&str, Scope)>,
    ) -> Result<(), BindingError> {
        let binding = Binding {
            destination: destination.to_owned(),
            key: self.parse_key(key)?,
            filter: filter
                .map(|(json, scope)| FilterPolicy::parse_for(json, scope).map(|p| (p, scope)))
                .transpose()?,
        };
        let headers_filter = matches!(binding.filter, Some((_, Scope::Attributes)));
        if self.kind == ExchangeKind::Headers && !headers_filter {
            return Err(BindingError::HeadersNeedFilter);
        }
        if self.bindings.contains(&binding) {
            return Err(BindingError::Duplicate {
                destination: binding.destination,
            });
        }
        self.bindings.push(binding);
        Ok(())
    }

    /// Removes every binding of `destination` with this key; returns how
    /// many there were.
    pub fn unbind(&mut self, destination: &str, key: &str) -> usize {
        let Ok(key) = self.parse_key(key) else {
            return 0;
        };
        let before = self.bindings.len();
        self.bindings
            .retain(|b| b.destination != destination || b.key != key);
        before - self.bindings.len()
    }

    /// Removes every binding to `destination` (when it is deleted).
    pub fn unbind_all(&mut self, destination: &str) -> usize {
        let before = self.bindings.len();
        self.bindings.retain(|b| b.destination != destination);
        before - self.bindings.len()
    }

    /// How many bindings the exchange has.
    pub fn binding_count(&self) -> usize {
        self.bindings.len()
    }

    /// Where `message` goes.
    pub fn route<'a>(&'a self, message: &Message<'_>) -> Routed<'a> {
        let mut routed = Routed::default();
        for b in &self.bindings {
            match b.miss(message) {
                None if !routed.destinations.contains(&b.destination.as_str()) => {
                    routed.destinations.push(&b.destination);
                }
                None => {}
                Some(why) => routed.missed.push((&b.destination, why)),
            }
        }
        routed
    }

    fn parse_key(&self, key: &str) -> Result<Key, BindingError> {
        Ok(match self.kind {
            ExchangeKind::Fanout | ExchangeKind::Headers => Key::Any,
            ExchangeKind::Direct => Key::Exact(key.to_owned()),
            ExchangeKind::Topic => Key::Pattern(TopicPattern::parse(key)?),
        })
    }
}

impl Binding {
    /// Why this binding does not take `message`, if it does not.
    fn miss(&self, message: &Message<'_>) -> Option<Miss> {
        let key_matches = match &self.key {
            Key::Any => true,
            Key::Exact(k) => k == message.routing_key,
            Key::Pattern(p) => p.matches(message.routing_key),
        };
        if !key_matches {
            return Some(Miss::Key);
        }
        let filter_matches = match &self.filter {
            None => true,
            Some((policy, Scope::Attributes)) => policy.matches_attributes(message.attributes),
            Some((policy, Scope::Body)) => policy.matches_body(message.body),
        };
        (!filter_matches).then_some(Miss::Filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<'a>(
        routing_key: &'a str,
        attributes: &'a [(&'a str, AttributeValue<'a>)],
        body: &'a [u8],
    ) -> Message<'a> {
        Message {
            routing_key,
            attributes,
            body,
        }
    }

    #[test]
    fn fanout_routes_to_every_destination_once() {
        let mut x = Exchange::new(ExchangeKind::Fanout);
        x.bind("mail", "ignored", None).unwrap();
        x.bind("coupon", "", None).unwrap();
        x.bind("mail", "other", Some((r#"{"type":["a"]}"#, Scope::Body)))
            .unwrap();
        let routed = x.route(&message("k", &[], br#"{"type":"a"}"#));
        assert_eq!(routed.destinations, vec!["mail", "coupon"]);
        assert!(routed.missed.is_empty());
    }

    #[test]
    fn direct_routes_on_equal_keys() {
        let mut x = Exchange::new(ExchangeKind::Direct);
        x.bind("errors", "error", None).unwrap();
        x.bind("all", "error", None).unwrap();
        x.bind("all", "info", None).unwrap();
        assert_eq!(
            x.route(&message("error", &[], b"")).destinations,
            vec!["errors", "all"]
        );
        let info = x.route(&message("info", &[], b""));
        assert_eq!(info.destinations, vec!["all"]);
        assert_eq!(info.missed, vec![("errors", Miss::Key), ("all", Miss::Key)]);
        assert!(x.route(&message("debug", &[], b"")).is_unroutable());
    }

    #[test]
    fn topic_routes_on_patterns() {
        let mut x = Exchange::new(ExchangeKind::Topic);
        x.bind("q1", "*.orange.*", None).unwrap();
        x.bind("q2", "*.*.rabbit", None).unwrap();
        x.bind("q2", "lazy.#", None).unwrap();
        let to = |key| x.route(&message(key, &[], b"")).destinations;
        assert_eq!(to("quick.orange.rabbit"), vec!["q1", "q2"]);
        assert_eq!(to("lazy.orange.elephant"), vec!["q1", "q2"]);
        assert_eq!(to("lazy.pink.rabbit"), vec!["q2"]);
        assert!(to("quick.brown.fox").is_empty());
        assert!(matches!(
            x.bind("q3", &"a".repeat(300), None),
            Err(BindingError::Pattern(_))
        ));
    }

    #[test]
    fn headers_route_on_attribute_filters_and_require_one() {
        let mut x = Exchange::new(ExchangeKind::Headers);
        assert_eq!(x.bind("q", "", None), Err(BindingError::HeadersNeedFilter));
        let policy = r#"{"event":["OrderCompleted"],"total":[{"numeric":[">",100]}]}"#;
        x.bind("big-orders", "", Some((policy, Scope::Attributes)))
            .unwrap();
        let attrs = [
            ("event", AttributeValue::String("OrderCompleted")),
            ("total", AttributeValue::Number("250")),
        ];
        assert_eq!(
            x.route(&message("", &attrs, b"")).destinations,
            vec!["big-orders"]
        );
        let small = [
            ("event", AttributeValue::String("OrderCompleted")),
            ("total", AttributeValue::Number("20")),
        ];
        let routed = x.route(&message("", &small, b""));
        assert!(routed.is_unroutable());
        assert_eq!(routed.missed, vec![("big-orders", Miss::Filter)]);
    }

    #[test]
    fn the_motivating_scenario_mail_gets_all_coupon_gets_orders() {
        let mut x = Exchange::new(ExchangeKind::Fanout);
        x.bind("mail", "", None).unwrap();
        let orders = r#"{"type":["OrderCompleted"]}"#;
        x.bind("coupon", "", Some((orders, Scope::Body))).unwrap();
        let joined = br#"{"type":"MemberJoined","member":7}"#;
        let completed = br#"{"type":"OrderCompleted","order":9}"#;
        assert_eq!(
            x.route(&message("", &[], joined)).destinations,
            vec!["mail"]
        );
        assert_eq!(
            x.route(&message("", &[], completed)).destinations,
            vec!["mail", "coupon"]
        );
    }

    #[test]
    fn bad_and_duplicate_bindings_are_refused_and_unbind_removes() {
        let mut x = Exchange::new(ExchangeKind::Direct);
        assert!(matches!(
            x.bind(
                "q",
                "k",
                Some((r#"{"a":"not-an-array"}"#, Scope::Attributes))
            ),
            Err(BindingError::Policy(_))
        ));
        x.bind("q", "k", None).unwrap();
        assert!(matches!(
            x.bind("q", "k", None),
            Err(BindingError::Duplicate { .. })
        ));
        x.bind("q", "j", None).unwrap();
        x.bind("r", "k", None).unwrap();
        assert_eq!(x.unbind("q", "k"), 1);
        assert_eq!(x.unbind("q", "k"), 0);
        assert_eq!(x.binding_count(), 2);
        assert_eq!(x.unbind_all("q"), 1);
        assert_eq!(x.route(&message("k", &[], b"")).destinations, vec!["r"]);
        // A nested policy cannot apply to flat attributes.
        assert!(matches!(
            x.bind("s", "k", Some((r#"{"a":{"b":["c"]}}"#, Scope::Attributes))),
            Err(BindingError::Policy(_))
        ));
    }
}
