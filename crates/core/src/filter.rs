//! The Amazon SNS filter-policy language, as Hermod applies it to exchange
//! bindings. A policy is a JSON object whose keys name message properties and
//! whose values are arrays of rules: keys are ANDed, the rules of one key are
//! ORed, and `"$or"` ORs whole groups of keys. A policy is applied either to a
//! message's attributes (headers, [`Scope::Attributes`]) or to its JSON body
//! ([`Scope::Body`]), where nested policy objects descend into nested body
//! objects. Parsing validates the policy the way SNS does (operators, operand
//! types, numeric ranges, the 150-combination and five-key limits) so that a
//! bad policy is refused when a binding is made, never when a message flows;
//! matching never fails and never panics, a message it cannot read simply
//! does not match.

use std::net::IpAddr;

use serde_json::{Map, Value};

/// Where a policy looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Message attributes (headers); policies must be flat.
    Attributes,
    /// The JSON message body (payload-based filtering); policies may nest.
    Body,
}

/// A parsed, validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    root: Conditions,
}

/// Why a policy was refused. Each message names the JSON path of the
/// offending key (`"a.b"`, with `$or[1]` for the second `$or` branch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON at all.
    #[error("filter policy is not valid JSON: {0}")]
    Json(String),
    /// The text is longer than SNS accepts.
    #[error("filter policy is {0} bytes; the limit is {MAX_POLICY_BYTES}")]
    TooLarge(usize),
    /// The policy, or a nested policy object, is not a JSON object.
    #[error("{}: must be a JSON object of keys to rule arrays", at(.path))]
    NotAnObject { path: String },
    /// The policy, or a nested policy object or `$or` branch, has no keys.
    #[error("{}: has no keys; an empty policy would match everything", at(.path))]
    Empty { path: String },
    /// A key's value is neither an array of rules nor a nested object.
    #[error("{}: value must be an array of rules (or, in a body policy, a nested object)", at(.path))]
    NotAnArray { path: String },
    /// A key's rule array is empty, so it could never match.
    #[error("{}: rule array is empty", at(.path))]
    EmptyRules { path: String },
    /// A rule is of a JSON type no rule can be (an array inside the rule array).
    #[error("{}: {found} is not a rule; rules are strings, numbers, true, false, null or operator objects", at(.path))]
    WrongValueType { path: String, found: &'static str },
    /// An operator object names an operator SNS does not have.
    #[error("{}: unknown operator \"{operator}\"", at(.path))]
    UnknownOperator { path: String, operator: String },
    /// An operator object has no operator or several.
    #[error("{}: an operator object must have exactly one operator, found {count}", at(.path))]
    OperatorCount { path: String, count: usize },
    /// An operator was given an operand of the wrong shape.
    #[error("{}: \"{operator}\" expects {expected}", at(.path))]
    BadOperand {
        path: String,
        operator: String,
        expected: &'static str,
    },
    /// A `numeric` rule is not a well-formed comparison or range.
    #[error("{}: {reason}", at(.path))]
    BadRange { path: String, reason: &'static str },
    /// A number outside what SNS can compare (±1e9).
    #[error("{}: number {value} is outside -1e9..=1e9", at(.path))]
    NumberOutOfRange { path: String, value: String },
    /// A `cidr` operand is not an IP prefix.
    #[error("{}: \"{value}\" is not a CIDR block such as 10.0.0.0/24", at(.path))]
    BadCidr { path: String, value: String },
    /// Policy objects nest deeper than Hermod allows.
    #[error("{}: policy nests deeper than {MAX_DEPTH} levels", at(.path))]
    TooDeep { path: String },
    /// The product of rule-array sizes (summed over `$or` branches) is too big.
    #[error("filter policy has {0} value combinations; the limit is {MAX_COMBINATIONS}")]
    TooManyCombinations(u64),
    /// More keys than SNS allows (top-level keys, counted through `$or`).
    #[error("{}: has {count} keys; the limit is {MAX_KEYS}", at(.path))]
    TooManyKeys { path: String, count: usize },
    /// A nested object in a policy meant for message attributes.
    #[error("{}: attribute policies cannot nest objects", at(.path))]
    NestedInAttributes { path: String },
}

/// One message attribute value, typed as SNS types them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeValue<'a> {
    /// `String`: matched by string rules only.
    String(&'a str),
    /// `Number`: its text, matched by numeric rules only.
    Number(&'a str),
    /// `String.Array`: a JSON array in a string; any element may match.
    StringArray(&'a str),
}

/// Most value combinations a policy may expand to (SNS's limit).
pub const MAX_COMBINATIONS: u64 = 150;
/// Most keys a policy may have (SNS's limit; see [`PolicyError::TooManyKeys`]).
pub const MAX_KEYS: usize = 5;
/// Most nesting levels (objects and `$or` branches). SNS documents none; this
/// bound keeps validation and matching recursion shallow.
pub const MAX_DEPTH: usize = 16;
/// Largest policy text (SNS's limit).
pub const MAX_POLICY_BYTES: usize = 256 * 1024;

impl FilterPolicy {
    /// Parses and validates a policy from its JSON text.
    pub fn parse(json: &str) -> Result<FilterPolicy, PolicyError> {
        if json.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge(json.len()));
        }
        let value: Value =
            serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))?;
        Self::from_value(&value)
    }

    /// Validates a policy already parsed as JSON.
    pub fn from_value(v: &Value) -> Result<FilterPolicy, PolicyError> {
        let root = parse_conditions(v, "", 0)?;
        let combinations = root.combinations();
        if combinations > MAX_COMBINATIONS {
            return Err(PolicyError::TooManyCombinations(combinations));
        }
        check_key_count(&root, "")?;
        Ok(FilterPolicy { root })
    }

    /// Parses a policy and checks it suits `scope` (see [`Self::check_scope`]).
    pub fn parse_for(json: &str, scope: Scope) -> Result<FilterPolicy, PolicyError> {
        let policy = Self::parse(json)?;
        policy.check_scope(scope)?;
        Ok(policy)
    }

    /// Checks the rules that depend on where the policy applies: SNS refuses
    /// nested objects in attribute policies.
    pub fn check_scope(&self, scope: Scope) -> Result<(), PolicyError> {
        match scope {
            Scope::Body => Ok(()),
            Scope::Attributes => self.root.check_flat(""),
        }
    }

    /// Matches message attributes: name -> value. A name given twice offers
    /// both values. Malformed `Number` or `String.Array` values count as absent.
    pub fn matches_attributes(&self, attrs: &[(&str, AttributeValue<'_>)]) -> bool {
        let mut object = Map::new();
        for (name, value) in attrs {
            if let Some(v) = attribute_json(*value) {
                push_value(&mut object, name, v);
            }
        }
        // SNS: `exists: false` never matches a message with no attributes.
        let ctx = Context {
            no_properties: attrs.is_empty(),
        };
        self.root.matches(&object, ctx)
    }

    /// Matches a JSON body (payload-based filtering); a body that is not a
    /// JSON object never matches.
    pub fn matches_body(&self, body: &[u8]) -> bool {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => self.matches_json(&object),
            _ => false,
        }
    }

    /// Matches an already-parsed JSON body object.
    pub fn matches_json(&self, body: &Map<String, Value>) -> bool {
        let ctx = Context {
            no_properties: false,
        };
        self.root.matches(body, ctx)
    }
}

// ---------------------------------------------------------------------------
// The parsed form.

/// Keys ANDed together, plus `$or` groups each needing one branch to match.
#[derive(Debug, Clone, PartialEq)]
struct Conditions {
    fields: Vec<Field>,
    ors: Vec<Vec<Conditions>>,
}

#[derive(Debug, Clone, PartialEq)]
struct Field {
    key: String,
    kind: FieldKind,
}

#[derive(Debug, Clone, PartialEq)]
enum FieldKind {
    /// Rules ORed against the key's leaf values.
    Leaf(Vec<Rule>),
    /// A nested policy applied to the key's object value(s).
    Nested(Conditions),
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Exact(Literal),
    Prefix(String),
    Suffix(String),
    /// Stored lowercased.
    EqualsIgnoreCase(String),
    AnythingBut(Exclusion),
    /// One comparison, or a lower and an upper bound.
    Numeric(Vec<(Cmp, i64)>),
    Exists(bool),
    Cidr(Cidr),
}

/// A plain rule value. Numbers are fixed-point (see [`fixed`]).
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Num(i64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
enum Exclusion {
    Values(Vec<Literal>),
    Prefix(String),
    Suffix(String),
    /// Stored lowercased.
    IgnoreCase(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    v6: bool,
    network: u128,
    mask: u128,
}

#[derive(Debug, Clone, Copy)]
struct Context {
    no_properties: bool,
}

const OPERATORS: &[&str] = &[
    "prefix",
    "suffix",
    "equals-ignore-case",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
];

// ---------------------------------------------------------------------------
// Parsing.

fn parse_conditions(v: &Value, path: &str, depth: usize) -> Result<Conditions, PolicyError> {
    if depth > MAX_DEPTH {
        return Err(PolicyError::TooDeep { path: path.into() });
    }
    let Value::Object(object) = v else {
        return Err(PolicyError::NotAnObject { path: path.into() });
    };
    if object.is_empty() {
        return Err(PolicyError::Empty { path: path.into() });
    }
    let mut conditions = Conditions {
        fields: Vec::new(),
        ors: Vec::new(),
    };
    for (key, value) in object {
        let key_path = join(path, key);
        if let Some(branches) = or_branches(key, value) {
            conditions.ors.push(parse_or(branches, &key_path, depth)?);
        } else {
            let kind = parse_field(value, &key_path, depth)?;
            conditions.fields.push(Field {
                key: key.clone(),
                kind,
            });
        }
    }
    Ok(conditions)
}

/// SNS treats `"$or"` as an operator only when it holds at least two objects
/// none of which uses an operator name as a key; otherwise it is an ordinary
/// property called `$or`.
fn or_branches<'v>(key: &str, value: &'v Value) -> Option<&'v Vec<Value>> {
    let Value::Array(items) = value else {
        return None;
    };
    let is_branch = |item: &Value| {
        item.as_object()
            .is_some_and(|o| o.keys().all(|k| !OPERATORS.contains(&k.as_str())))
    };
    (key == "$or" && items.len() >= 2 && items.iter().all(is_branch)).then_some(items)
}

fn parse_or(branches: &[Value], path: &str, depth: usize) -> Result<Vec<Conditions>, PolicyError> {
    branches
        .iter()
        .enumerate()
        .map(|(i, b)| parse_conditions(b, &format!("{path}[{i}]"), depth + 1))
        .collect()
}

fn parse_field(value: &Value, path: &str, depth: usize) -> Result<FieldKind, PolicyError> {
    match value {
        Value::Object(_) => Ok(FieldKind::Nested(parse_conditions(value, path, depth + 1)?)),
        Value::Array(rules) if rules.is_empty() => {
            Err(PolicyError::EmptyRules { path: path.into() })
        }
        Value::Array(rules) => rules
            .iter()
            .map(|r| parse_rule(r, path))
            .collect::<Result<_, _>>()
            .map(FieldKind::Leaf),
        _ => Err(PolicyError::NotAnArray { path: path.into() }),
    }
}

fn parse_rule(rule: &Value, path: &str) -> Result<Rule, PolicyError> {
    match rule {
        Value::Object(op) => parse_operator(op, path),
        Value::Array(_) => Err(PolicyError::WrongValueType {
            path: path.into(),
            found: "an array",
        }),
        scalar => parse_literal(scalar, path).map(Rule::Exact),
    }
}

fn parse_literal(v: &Value, path: &str) -> Result<Literal, PolicyError> {
    Ok(match v {
        Value::String(s) => Literal::Str(s.clone()),
        Value::Number(_) => Literal::Num(parse_number(v, path)?),
        Value::Bool(b) => Literal::Bool(*b),
        Value::Null => Literal::Null,
        _ => {
            return Err(PolicyError::WrongValueType {
                path: path.into(),
                found: json_type(v),
            })
        }
    })
}

fn parse_number(v: &Value, path: &str) -> Result<i64, PolicyError> {
    let out_of_range = || PolicyError::NumberOutOfRange {
        path: path.into(),
        value: v.to_string(),
    };
    v.as_f64().and_then(fixed).ok_or_else(out_of_range)
}

fn parse_operator(op: &Map<String, Value>, path: &str) -> Result<Rule, PolicyError> {
    let mut entries = op.iter();
    let (Some((name, operand)), None) = (entries.next(), entries.next()) else {
        return Err(PolicyError::OperatorCount {
            path: path.into(),
            count: op.len(),
        });
    };
    let bad = |expected| PolicyError::BadOperand {
        path: path.into(),
        operator: name.clone(),
        expected,
    };
    match name.as_str() {
        "prefix" => string_operand(operand)
            .map(Rule::Prefix)
            .ok_or_else(|| bad("a string")),
        "suffix" => string_operand(operand)
            .map(Rule::Suffix)
            .ok_or_else(|| bad("a string")),
        "equals-ignore-case" => string_operand(operand)
            .map(|s| Rule::EqualsIgnoreCase(s.to_lowercase()))
            .ok_or_else(|| bad("a string")),
        "exists" => operand
            .as_bool()
            .map(Rule::Exists)
            .ok_or_else(|| bad("true or false")),
        "numeric" => parse_numeric(operand, path).map(Rule::Numeric),
        "anything-but" => parse_anything_but(operand, path).map(Rule::AnythingBut),
        "cidr" => parse_cidr(operand, path).map(Rule::Cidr),
        _ => Err(PolicyError::UnknownOperator {
            path: path.into(),
            operator: name.clone(),
        }),
    }
}

fn string_operand(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn parse_numeric(operand: &Value, path: &str) -> Result<Vec<(Cmp, i64)>, PolicyError> {
    let bad = |reason| PolicyError::BadRange {
        path: path.into(),
        reason,
    };
    let Some(items) = operand.as_array() else {
        return Err(bad(
            "\"numeric\" expects an array such as [\">\", 0, \"<=\", 150]",
        ));
    };
    if items.len() != 2 && items.len() != 4 {
        return Err(bad(
            "\"numeric\" expects one comparison or a lower and an upper bound",
        ));
    }
    let mut parts = Vec::with_capacity(2);
    for pair in items.chunks(2) {
        let cmp = pair[0]
            .as_str()
            .and_then(parse_cmp)
            .ok_or_else(|| bad("numeric operators are =, <, <=, > and >="))?;
        if !pair[1].is_number() {
            return Err(bad("a numeric operator must be followed by a number"));
        }
        parts.push((cmp, parse_number(&pair[1], path)?));
    }
    check_range(&parts).map_err(bad)?;
    Ok(parts)
}

fn parse_cmp(s: &str) -> Option<Cmp> {
    Some(match s {
        "=" => Cmp::Eq,
        "<" => Cmp::Lt,
        "<=" => Cmp::Le,
        ">" => Cmp::Gt,
        ">=" => Cmp::Ge,
        _ => return None,
    })
}

/// A two-part range must be one lower and one upper bound, lower first
/// (as SNS writes them), with the lower below the upper.
fn check_range(parts: &[(Cmp, i64)]) -> Result<(), &'static str> {
    let [(low_op, low), (high_op, high)] = parts else {
        return Ok(());
    };
    if !matches!(low_op, Cmp::Gt | Cmp::Ge) || !matches!(high_op, Cmp::Lt | Cmp::Le) {
        return Err("numeric range needs a lower bound (> or >=) then an upper bound (< or <=)");
    }
    if low >= high {
        return Err("numeric range needs a lower bound below its upper bound");
    }
    Ok(())
}

fn parse_anything_but(operand: &Value, path: &str) -> Result<Exclusion, PolicyError> {
    let bad = |expected| PolicyError::BadOperand {
        path: path.into(),
        operator: "anything-but".into(),
        expected,
    };
    const VALUES: &str =
        "a string, a number, a non-empty array of strings and numbers, or {\"prefix\"|\"suffix\"|\"equals-ignore-case\": ...}";
    match operand {
        Value::String(_) | Value::Number(_) => {
            Ok(Exclusion::Values(vec![parse_literal(operand, path)?]))
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(is_str_or_num) => items
            .iter()
            .map(|v| parse_literal(v, path))
            .collect::<Result<_, _>>()
            .map(Exclusion::Values),
        Value::Object(inner) => parse_exclusion_operator(inner, path),
        _ => Err(bad(VALUES)),
    }
}

fn is_str_or_num(v: &Value) -> bool {
    v.is_string() || v.is_number()
}

fn parse_exclusion_operator(
    inner: &Map<String, Value>,
    path: &str,
) -> Result<Exclusion, PolicyError> {
    let mut entries = inner.iter();
    let (Some((name, operand)), None) = (entries.next(), entries.next()) else {
        return Err(PolicyError::OperatorCount {
            path: path.into(),
            count: inner.len(),
        });
    };
    let bad = |expected| PolicyError::BadOperand {
        path: path.into(),
        operator: format!("anything-but/{name}"),
        expected,
    };
    match name.as_str() {
        "prefix" => string_operand(operand)
            .map(Exclusion::Prefix)
            .ok_or_else(|| bad("a string")),
        "suffix" => string_operand(operand)
            .map(Exclusion::Suffix)
            .ok_or_else(|| bad("a string")),
        "equals-ignore-case" => ignore_case_list(operand)
            .map(Exclusion::IgnoreCase)
            .ok_or_else(|| bad("a string or a non-empty array of strings")),
        _ => Err(PolicyError::UnknownOperator {
            path: path.into(),
            operator: format!("anything-but/{name}"),
        }),
    }
}

fn ignore_case_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.to_lowercase()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_lowercase))
            .collect(),
        _ => None,
    }
}

fn parse_cidr(operand: &Value, path: &str) -> Result<Cidr, PolicyError> {
    let text = operand.as_str().ok_or_else(|| PolicyError::BadOperand {
        path: path.into(),
        operator: "cidr".into(),
        expected: "a string such as \"10.0.0.0/24\"",
    })?;
    Cidr::parse(text).ok_or_else(|| PolicyError::BadCidr {
        path: path.into(),
        value: text.into(),
    })
}

impl Cidr {
    fn parse(text: &str) -> Option<Cidr> {
        let (addr, len) = text.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let len: u32 = len.parse().ok()?;
        let (v6, bits, width) = ip_bits(addr);
        if len > width {
            return None;
        }
        // Mask within the address's own width, stored in the low bits.
        let full = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        let mask = full & !(full.checked_shr(len).unwrap_or(0));
        Some(Cidr {
            v6,
            network: bits & mask,
            mask,
        })
    }

    fn contains(&self, text: &str) -> bool {
        let Ok(addr) = text.parse::<IpAddr>() else {
            return false;
        };
        let (v6, bits, _) = ip_bits(addr);
        v6 == self.v6 && bits & self.mask == self.network
    }
}

fn ip_bits(addr: IpAddr) -> (bool, u128, u32) {
    match addr {
        IpAddr::V4(a) => (false, u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (true, u128::from(a), 128),
    }
}

// ---------------------------------------------------------------------------
// Limits.

impl Conditions {
    /// SNS's complexity measure: the product of rule-array sizes, where an
    /// `$or` contributes the sum of its branches (the policy's size once
    /// expanded into ORed conjunctions). Saturates rather than overflowing.
    fn combinations(&self) -> u64 {
        let fields = self.fields.iter().map(|f| match &f.kind {
            FieldKind::Leaf(rules) => rules.len() as u64,
            FieldKind::Nested(inner) => inner.combinations(),
        });
        let ors = self.ors.iter().map(|branches| {
            branches
                .iter()
                .map(Conditions::combinations)
                .fold(0, u64::saturating_add)
        });
        fields.chain(ors).fold(1, u64::saturating_mul)
    }

    /// Names of this object's keys, including those of its `$or` branches
    /// (which SNS counts as keys of the same object).
    fn key_names<'a>(&'a self, out: &mut Vec<&'a str>) {
        for field in &self.fields {
            if !out.contains(&field.key.as_str()) {
                out.push(&field.key);
            }
        }
        for branch in self.ors.iter().flatten() {
            branch.key_names(out);
        }
    }

    fn check_flat(&self, path: &str) -> Result<(), PolicyError> {
        for field in &self.fields {
            if let FieldKind::Nested(_) = field.kind {
                return Err(PolicyError::NestedInAttributes {
                    path: join(path, &field.key),
                });
            }
        }
        self.ors
            .iter()
            .flatten()
            .try_for_each(|b| b.check_flat(path))
    }
}

/// SNS allows five keys; for body policies only top-level keys count, and an
/// attribute policy has nothing but top-level keys, so one rule serves both.
fn check_key_count(root: &Conditions, path: &str) -> Result<(), PolicyError> {
    let mut names = Vec::new();
    root.key_names(&mut names);
    if names.len() > MAX_KEYS {
        return Err(PolicyError::TooManyKeys {
            path: path.into(),
            count: names.len(),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Matching.

impl Conditions {
    fn matches(&self, object: &Map<String, Value>, ctx: Context) -> bool {
        self.fields.iter().all(|f| f.matches(object, ctx))
            && self
                .ors
                .iter()
                .all(|branches| branches.iter().any(|b| b.matches(object, ctx)))
    }
}

impl Field {
    fn matches(&self, object: &Map<String, Value>, ctx: Context) -> bool {
        let value = object.get(&self.key);
        match &self.kind {
            FieldKind::Leaf(rules) => {
                let mut values = Vec::new();
                leaf_values(value, &mut values);
                rules.iter().any(|r| r.matches(&values, ctx))
            }
            FieldKind::Nested(inner) => nested_matches(inner, value, ctx),
        }
    }
}

/// A nested policy matches if any object at the key (one, or the objects of
/// an array) matches it; with no object there, it is tried against an empty
/// one so that `exists: false` below it still holds.
fn nested_matches(inner: &Conditions, value: Option<&Value>, ctx: Context) -> bool {
    let mut objects = Vec::new();
    child_objects(value, &mut objects);
    if objects.is_empty() {
        return inner.matches(&Map::new(), ctx);
    }
    objects.into_iter().any(|o| inner.matches(o, ctx))
}

fn child_objects<'a>(value: Option<&'a Value>, out: &mut Vec<&'a Map<String, Value>>) {
    match value {
        Some(Value::Object(o)) => out.push(o),
        Some(Value::Array(items)) => items.iter().for_each(|i| child_objects(Some(i), out)),
        _ => {}
    }
}

/// The scalar values at a key: the value itself, or the scalars of an array
/// (flattened). Objects are not leaves: SNS's `exists` ignores them.
fn leaf_values<'a>(value: Option<&'a Value>, out: &mut Vec<&'a Value>) {
    match value {
        Some(Value::Array(items)) => items.iter().for_each(|i| leaf_values(Some(i), out)),
        Some(Value::Object(_)) | None => {}
        Some(scalar) => out.push(scalar),
    }
}

impl Rule {
    fn matches(&self, values: &[&Value], ctx: Context) -> bool {
        let present = || values.iter().any(|v| !v.is_null());
        match self {
            Rule::Exists(true) => present(),
            Rule::Exists(false) => !present() && !ctx.no_properties,
            // Per element, as SNS's examples show: ["rugby", "baseball"]
            // matches anything-but ["rugby"] because "baseball" is not rugby.
            Rule::AnythingBut(x) => values.iter().any(|v| !v.is_null() && x.admits(v)),
            _ => values.iter().any(|v| self.matches_value(v)),
        }
    }

    fn matches_value(&self, v: &Value) -> bool {
        match (self, v) {
            (Rule::Exact(lit), _) => lit.equals(v),
            (Rule::Prefix(p), Value::String(s)) => s.starts_with(p.as_str()),
            (Rule::Suffix(p), Value::String(s)) => s.ends_with(p.as_str()),
            (Rule::EqualsIgnoreCase(p), Value::String(s)) => s.to_lowercase() == *p,
            (Rule::Numeric(parts), Value::Number(_)) => numeric_matches(parts, v),
            (Rule::Cidr(c), Value::String(s)) => c.contains(s),
            _ => false,
        }
    }
}

fn numeric_matches(parts: &[(Cmp, i64)], v: &Value) -> bool {
    let Some(x) = v.as_f64().and_then(fixed) else {
        return false;
    };
    parts.iter().all(|&(cmp, bound)| match cmp {
        Cmp::Eq => x == bound,
        Cmp::Lt => x < bound,
        Cmp::Le => x <= bound,
        Cmp::Gt => x > bound,
        Cmp::Ge => x >= bound,
    })
}

impl Literal {
    fn equals(&self, v: &Value) -> bool {
        match (self, v) {
            (Literal::Str(a), Value::String(b)) => a == b,
            (Literal::Num(a), Value::Number(_)) => v.as_f64().and_then(fixed) == Some(*a),
            (Literal::Bool(a), Value::Bool(b)) => a == b,
            (Literal::Null, Value::Null) => true,
            _ => false,
        }
    }
}

impl Exclusion {
    /// Whether a present, non-null value gets past this exclusion.
    fn admits(&self, v: &Value) -> bool {
        match (self, v) {
            (Exclusion::Values(lits), _) => !lits.iter().any(|l| l.equals(v)),
            (Exclusion::Prefix(p), Value::String(s)) => !s.starts_with(p.as_str()),
            (Exclusion::Suffix(p), Value::String(s)) => !s.ends_with(p.as_str()),
            (Exclusion::IgnoreCase(list), Value::String(s)) => !list.contains(&s.to_lowercase()),
            // String-pattern exclusions say nothing about non-strings.
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers.

/// SNS compares numbers from -1e9 to 1e9 with five decimal places; scaling to
/// an integer makes equality exact at that precision. `None` when out of range.
fn fixed(x: f64) -> Option<i64> {
    if !x.is_finite() || x.abs() > 1e9 {
        return None;
    }
    // |x| * 1e5 <= 1e14, far inside i64 and exact in f64.
    Some((x * 1e5).round() as i64)
}

/// An attribute as the JSON value the body matcher understands; `None` when
/// its text is malformed.
fn attribute_json(value: AttributeValue<'_>) -> Option<Value> {
    match value {
        AttributeValue::String(s) => Some(Value::String(s.to_owned())),
        AttributeValue::Number(n) => {
            let x: f64 = n.trim().parse().ok()?;
            serde_json::Number::from_f64(x).map(Value::Number)
        }
        AttributeValue::StringArray(a) => match serde_json::from_str(a) {
            Ok(Value::Array(items)) => Some(Value::Array(items)),
            _ => None,
        },
    }
}

/// Adds an attribute; a repeated name becomes an array of all its values.
fn push_value(object: &mut Map<String, Value>, name: &str, value: Value) {
    match object.get_mut(name) {
        None => {
            object.insert(name.to_owned(), value);
        }
        Some(existing) => {
            let previous = existing.take();
            *existing = Value::Array(vec![previous, value]);
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// How an error names its location: the quoted path, or "filter policy" at
/// the root.
fn at(path: &str) -> String {
    if path.is_empty() {
        "filter policy".to_owned()
    } else {
        format!("{path:?}")
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
