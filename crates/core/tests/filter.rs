//! Tests of the SNS filter-policy language: each operator both ways, `$or`,
//! nesting, arrays, the AWS documentation's own examples, every validation
//! error, and property tests that nothing panics on arbitrary input.

use hermod_core::filter::{AttributeValue, FilterPolicy, PolicyError, Scope};
use proptest::prelude::*;
use serde_json::{json, Value};

use AttributeValue::{Number as N, String as S, StringArray as A};

fn policy(json: &str) -> FilterPolicy {
    FilterPolicy::parse(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn body(p: &FilterPolicy, b: Value) -> bool {
    p.matches_body(b.to_string().as_bytes())
}

fn attrs(p: &FilterPolicy, a: &[(&str, AttributeValue<'_>)]) -> bool {
    p.matches_attributes(a)
}

fn err(json: &str) -> PolicyError {
    match FilterPolicy::parse(json) {
        Ok(p) => panic!("{json} parsed as {p:?}"),
        Err(e) => e,
    }
}

// --- exact string matching and OR within a key -----------------------------

#[test]
fn exact_string_attributes() {
    let p = policy(r#"{"customer_interests": ["rugby", "tennis"]}"#);
    assert!(attrs(&p, &[("customer_interests", S("rugby"))]));
    assert!(attrs(&p, &[("customer_interests", S("tennis"))]));
    assert!(attrs(
        &p,
        &[("customer_interests", A(r#"["rugby", "tennis"]"#))]
    ));
    assert!(!attrs(&p, &[("customer_interests", S("baseball"))]));
    assert!(!attrs(&p, &[("customer_interests", A(r#"["baseball"]"#))]));
    assert!(!attrs(&p, &[("other", S("rugby"))]));
    // Case-sensitive.
    assert!(!attrs(&p, &[("customer_interests", S("Rugby"))]));
}

#[test]
fn exact_string_body() {
    let p = policy(r#"{"customer_interests": ["rugby", "tennis"]}"#);
    assert!(body(&p, json!({"customer_interests": "rugby"})));
    assert!(body(
        &p,
        json!({"customer_interests": ["baseball", "tennis"]})
    ));
    assert!(!body(&p, json!({"customer_interests": "baseball"})));
    assert!(!body(&p, json!({"customer_interests": ["baseball"]})));
    assert!(!body(&p, json!({})));
}

#[test]
fn string_rules_do_not_match_numbers_and_back() {
    let p = policy(r#"{"n": ["100"]}"#);
    assert!(!attrs(&p, &[("n", N("100"))]));
    assert!(!body(&p, json!({"n": 100})));
    assert!(body(&p, json!({"n": "100"})));
    let p = policy(r#"{"n": [100]}"#);
    assert!(attrs(&p, &[("n", N("100"))]));
    assert!(attrs(&p, &[("n", N("1e2"))]));
    assert!(!attrs(&p, &[("n", S("100"))]));
    assert!(body(&p, json!({"n": 100.0})));
    assert!(!body(&p, json!({"n": "100"})));
}

#[test]
fn literals_true_false_null() {
    let p = policy(r#"{"flag": [true], "gone": [null]}"#);
    assert!(body(&p, json!({"flag": true, "gone": null})));
    assert!(!body(&p, json!({"flag": false, "gone": null})));
    assert!(!body(&p, json!({"flag": true})));
    assert!(!body(&p, json!({"flag": "true", "gone": null})));
}

// --- prefix, suffix, equals-ignore-case, cidr ------------------------------

#[test]
fn prefix() {
    let p = policy(r#"{"customer_interests": [{"prefix": "bas"}]}"#);
    assert!(attrs(&p, &[("customer_interests", S("baseball"))]));
    assert!(attrs(&p, &[("customer_interests", S("basketball"))]));
    assert!(!attrs(&p, &[("customer_interests", S("rugby"))]));
    assert!(!attrs(&p, &[("customer_interests", S("ba"))]));
    assert!(body(
        &p,
        json!({"customer_interests": ["rugby", "basketball"]})
    ));
    assert!(!body(&p, json!({"customer_interests": 5})));
}

#[test]
fn suffix() {
    let p = policy(r#"{"customer_interests": [{"suffix": "ball"}]}"#);
    assert!(attrs(&p, &[("customer_interests", S("baseball"))]));
    assert!(attrs(&p, &[("customer_interests", S("basketball"))]));
    assert!(!attrs(&p, &[("customer_interests", S("rugby"))]));
    assert!(!body(&p, json!({"customer_interests": "balls"})));
}

#[test]
fn equals_ignore_case() {
    let p = policy(r#"{"customer_interests": [{"equals-ignore-case": "tennis"}]}"#);
    assert!(attrs(&p, &[("customer_interests", S("TENNIS"))]));
    assert!(attrs(&p, &[("customer_interests", S("Tennis"))]));
    assert!(attrs(
        &p,
        &[("customer_interests", A(r#"["golf", "TeNnIs"]"#))]
    ));
    assert!(!attrs(&p, &[("customer_interests", S("baseball"))]));
    assert!(!attrs(&p, &[("customer_interests", S("tennis "))]));
    assert!(body(&p, json!({"customer_interests": "tEnNiS"})));
}

#[test]
fn cidr() {
    let p = policy(r#"{"source_ip": [{"cidr": "10.0.0.0/24"}]}"#);
    assert!(attrs(&p, &[("source_ip", S("10.0.0.0"))]));
    assert!(attrs(&p, &[("source_ip", S("10.0.0.255"))]));
    assert!(!attrs(&p, &[("source_ip", S("10.0.1.0"))]));
    assert!(!attrs(&p, &[("source_ip", S("not an ip"))]));
    assert!(!attrs(&p, &[("source_ip", S("::1"))]));
    let p = policy(r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#);
    assert!(body(&p, json!({"ip": "2001:db8:1::7"})));
    assert!(!body(&p, json!({"ip": "2001:db9::7"})));
    let p = policy(r#"{"ip": [{"cidr": "0.0.0.0/0"}]}"#);
    assert!(body(&p, json!({"ip": "192.168.1.1"})));
}

// --- anything-but ----------------------------------------------------------

#[test]
fn anything_but_strings() {
    let p = policy(r#"{"customer_interests": [{"anything-but": ["rugby", "tennis"]}]}"#);
    assert!(attrs(&p, &[("customer_interests", S("baseball"))]));
    assert!(attrs(&p, &[("customer_interests", S("football"))]));
    // Per AWS: matches because one element is neither rugby nor tennis.
    assert!(attrs(
        &p,
        &[("customer_interests", A(r#"["rugby", "baseball"]"#))]
    ));
    assert!(body(
        &p,
        json!({"customer_interests": ["rugby", "baseball"]})
    ));
    assert!(!attrs(&p, &[("customer_interests", S("rugby"))]));
    assert!(!attrs(
        &p,
        &[("customer_interests", A(r#"["rugby", "tennis"]"#))]
    ));
    assert!(!body(&p, json!({"customer_interests": "tennis"})));
    // Needs the key to be present.
    assert!(!attrs(&p, &[("other", S("baseball"))]));
    assert!(!body(&p, json!({"customer_interests": null})));
}

#[test]
fn anything_but_single_value() {
    let p = policy(r#"{"state": [{"anything-but": "cancelled"}]}"#);
    assert!(body(&p, json!({"state": "shipped"})));
    assert!(!body(&p, json!({"state": "cancelled"})));
}

#[test]
fn anything_but_numbers() {
    let p = policy(r#"{"price": [{"anything-but": [100, 500]}]}"#);
    assert!(attrs(&p, &[("price", N("101"))]));
    assert!(attrs(&p, &[("price", N("100.1"))]));
    assert!(body(&p, json!({"price": [100, 50]})));
    assert!(!attrs(&p, &[("price", N("100"))]));
    assert!(!attrs(&p, &[("price", N("5e2"))]));
    assert!(!body(&p, json!({"price": 100})));
    assert!(!body(&p, json!({})));
}

#[test]
fn anything_but_prefix() {
    let p = policy(r#"{"event": [{"anything-but": {"prefix": "order-"}}]}"#);
    assert!(attrs(&p, &[("event", S("data-entry"))]));
    assert!(attrs(&p, &[("event", S("order"))]));
    assert!(!attrs(&p, &[("event", S("order-cancelled"))]));
    assert!(!attrs(&p, &[]));
    assert!(body(&p, json!({"event": "shipped"})));
    assert!(!body(&p, json!({"event": "order-placed"})));
}

#[test]
fn anything_but_suffix_and_ignore_case() {
    let p = policy(r#"{"f": [{"anything-but": {"suffix": ".tmp"}}]}"#);
    assert!(body(&p, json!({"f": "a.txt"})));
    assert!(!body(&p, json!({"f": "a.tmp"})));
    let p = policy(r#"{"f": [{"anything-but": {"equals-ignore-case": ["Red", "BLUE"]}}]}"#);
    assert!(body(&p, json!({"f": "green"})));
    assert!(!body(&p, json!({"f": "RED"})));
    assert!(!body(&p, json!({"f": "blue"})));
}

#[test]
fn anything_but_or_absent() {
    // AWS: anything-but can be ORed with exists: false.
    let p = policy(r#"{"s": [{"anything-but": ["x"]}, {"exists": false}]}"#);
    assert!(attrs(&p, &[("other", S("1"))]));
    assert!(attrs(&p, &[("s", S("y"))]));
    assert!(!attrs(&p, &[("s", S("x"))]));
}

// --- numeric ---------------------------------------------------------------

#[test]
fn numeric_equals() {
    let p = policy(r#"{"price_usd": [{"numeric": ["=", 301.5]}]}"#);
    assert!(attrs(&p, &[("price_usd", N("301.5"))]));
    assert!(attrs(&p, &[("price_usd", N("3.015e2"))]));
    assert!(body(&p, json!({"price_usd": 301.5})));
    assert!(body(&p, json!({"price_usd": 3.015e2})));
    assert!(!attrs(&p, &[("price_usd", N("301.6"))]));
    assert!(!attrs(&p, &[("price_usd", S("301.5"))]));
    assert!(!body(&p, json!({"price_usd": "301.5"})));
}

#[test]
fn numeric_precision_is_five_decimals() {
    let p = policy(r#"{"x": [{"numeric": ["=", 1.00001]}]}"#);
    assert!(body(&p, json!({"x": 1.00001})));
    assert!(body(&p, json!({"x": 1.000011})));
    assert!(!body(&p, json!({"x": 1.00002})));
    // Beyond ±1e9 a message value cannot be compared.
    let p = policy(r#"{"x": [{"numeric": [">", 0]}]}"#);
    assert!(body(&p, json!({"x": 1e9})));
    assert!(!body(&p, json!({"x": 1.5e9})));
}

#[test]
fn numeric_comparisons() {
    let cases: &[(&str, &[(&str, bool)])] = &[
        ("[\"<\", 0]", &[("-1", true), ("0", false), ("1", false)]),
        (
            "[\"<=\", 0]",
            &[("-1", true), ("0", true), ("0.00001", false)],
        ),
        (
            "[\">\", 0]",
            &[("-1", false), ("0", false), ("0.00001", true)],
        ),
        (
            "[\">=\", 0]",
            &[("-0.00001", false), ("0", true), ("7", true)],
        ),
    ];
    for (range, checks) in cases {
        let p = policy(&format!(r#"{{"v": [{{"numeric": {range}}}]}}"#));
        for (value, expected) in *checks {
            assert_eq!(
                attrs(&p, &[("v", N(value))]),
                *expected,
                "{range} vs {value}"
            );
        }
    }
}

#[test]
fn numeric_range_bounds() {
    let p = policy(r#"{"price_usd": [{"numeric": [">", 0, "<=", 150]}]}"#);
    assert!(!attrs(&p, &[("price_usd", N("0"))]));
    assert!(attrs(&p, &[("price_usd", N("0.00001"))]));
    assert!(attrs(&p, &[("price_usd", N("150"))]));
    assert!(!attrs(&p, &[("price_usd", N("150.00001"))]));
    assert!(!attrs(&p, &[("price_usd", N("-3"))]));
    let p = policy(r#"{"v": [{"numeric": [">=", 10, "<", 20]}]}"#);
    assert!(body(&p, json!({"v": 10})));
    assert!(body(&p, json!({"v": 19.99999})));
    assert!(!body(&p, json!({"v": 20})));
    assert!(!body(&p, json!({"v": 9.99999})));
    assert!(body(&p, json!({"v": [1, 15, 30]})));
}

// --- exists ----------------------------------------------------------------

#[test]
fn exists_true() {
    let p = policy(r#"{"store": [{"exists": true}]}"#);
    assert!(attrs(
        &p,
        &[
            ("store", S("fans")),
            ("customer_interests", A(r#"["baseball"]"#))
        ]
    ));
    assert!(!attrs(
        &p,
        &[("customer_interests", A(r#"["baseball", "basketball"]"#))]
    ));
    assert!(body(&p, json!({"store": "fans"})));
    assert!(body(&p, json!({"store": 0})));
    assert!(!body(&p, json!({"customer_interests": ["baseball"]})));
    assert!(!body(&p, json!({"store": null})));
    assert!(!body(&p, json!({"store": []})));
    // exists applies to leaves only.
    assert!(!body(&p, json!({"store": {"name": "fans"}})));
}

#[test]
fn exists_false() {
    let p = policy(r#"{"store": [{"exists": false}]}"#);
    assert!(attrs(&p, &[("customer_interests", A(r#"["baseball"]"#))]));
    assert!(!attrs(&p, &[("store", S("fans"))]));
    // AWS: an empty attribute set never matches exists: false.
    assert!(!attrs(&p, &[]));
    assert!(body(&p, json!({"customer_interests": ["baseball"]})));
    assert!(!body(&p, json!({"store": "fans"})));
}

// --- AND, $or --------------------------------------------------------------

#[test]
fn keys_are_anded() {
    let p = policy(r#"{"customer_interests": ["rugby"], "price_usd": [{"numeric": [">", 100]}]}"#);
    assert!(attrs(
        &p,
        &[("customer_interests", S("rugby")), ("price_usd", N("101"))]
    ));
    assert!(!attrs(
        &p,
        &[("customer_interests", S("rugby")), ("price_usd", N("100"))]
    ));
    assert!(!attrs(&p, &[("customer_interests", S("rugby"))]));
    assert!(body(
        &p,
        json!({"customer_interests": "rugby", "price_usd": 150})
    ));
}

#[test]
fn or_operator() {
    let p = policy(
        r#"{"source": ["aws.cloudwatch"],
            "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}"#,
    );
    assert!(attrs(
        &p,
        &[
            ("source", S("aws.cloudwatch")),
            ("metricName", S("CPUUtilization"))
        ]
    ));
    assert!(attrs(
        &p,
        &[("source", S("aws.cloudwatch")), ("namespace", S("AWS/EC2"))]
    ));
    assert!(!attrs(
        &p,
        &[("source", S("aws.cloudwatch")), ("namespace", S("AWS/RDS"))]
    ));
    assert!(!attrs(
        &p,
        &[("source", S("aws.other")), ("namespace", S("AWS/EC2"))]
    ));
    assert!(body(
        &p,
        json!({"source": "aws.cloudwatch", "namespace": "AWS/EC2"})
    ));
}

#[test]
fn nested_or() {
    let p = policy(
        r#"{"source": ["aws.cloudwatch"],
            "$or": [
              {"metricName": ["CPUUtilization", "ReadLatency"]},
              {"metricType": ["MetricType"],
               "$or": [{"metricId": [1234, 4321]}, {"spaceId": [1000, 2000, 3000]}]}
            ]}"#,
    );
    let m = |v: Value| body(&p, v);
    assert!(m(
        json!({"source": "aws.cloudwatch", "metricName": "ReadLatency"})
    ));
    assert!(m(
        json!({"source": "aws.cloudwatch", "metricType": "MetricType", "metricId": 4321})
    ));
    assert!(m(
        json!({"source": "aws.cloudwatch", "metricType": "MetricType", "spaceId": 2000})
    ));
    assert!(!m(
        json!({"source": "aws.cloudwatch", "metricType": "MetricType", "spaceId": 4000})
    ));
    assert!(!m(json!({"source": "aws.cloudwatch", "metricId": 1234})));
}

#[test]
fn or_inside_nested_object() {
    let p = policy(r#"{"detail": {"$or": [{"a": ["x"]}, {"b": ["y"]}]}}"#);
    assert!(body(&p, json!({"detail": {"b": "y"}})));
    assert!(!body(&p, json!({"detail": {"b": "x"}})));
    assert!(!body(&p, json!({"b": "y"})));
}

#[test]
fn dollar_or_that_is_not_an_operator_is_a_key() {
    // Fewer than two objects: "$or" is an ordinary property name, and its
    // value here is an ordinary rule array.
    let p = policy(r#"{"$or": ["x"]}"#);
    assert!(body(&p, json!({"$or": "x"})));
    // A branch using an operator name as a key is not an $or either; then
    // the objects are operator objects, and {"numeric": 123} is malformed.
    assert!(matches!(
        err(r#"{"$or": [{"numeric": 123}, {"prefix": "abc"}]}"#),
        PolicyError::BadRange { .. }
    ));
}

// --- nesting and arrays in the body ----------------------------------------

#[test]
fn nested_body_keys() {
    let p = policy(
        r#"{"store": ["example_corp"],
            "customer": {"interests": [{"prefix": "bas"}], "address": {"country": ["NO", "SE"]}}}"#,
    );
    assert!(body(
        &p,
        json!({"store": "example_corp", "customer": {"interests": ["rugby", "basketball"], "address": {"country": "NO"}}})
    ));
    assert!(!body(
        &p,
        json!({"store": "example_corp", "customer": {"interests": "basketball", "address": {"country": "DK"}}})
    ));
    // The keys must be at the right depth.
    assert!(!body(
        &p,
        json!({"store": "example_corp", "interests": "basketball", "country": "NO"})
    ));
    assert!(!body(
        &p,
        json!({"store": "example_corp", "customer": "basketball"})
    ));
}

#[test]
fn nested_keys_through_arrays_of_objects() {
    let p = policy(r#"{"items": {"sku": ["A1"], "qty": [{"numeric": [">", 1]}]}}"#);
    assert!(body(
        &p,
        json!({"items": [{"sku": "B2", "qty": 5}, {"sku": "A1", "qty": 2}]})
    ));
    // Both conditions must hold in the same element.
    assert!(!body(
        &p,
        json!({"items": [{"sku": "B2", "qty": 5}, {"sku": "A1", "qty": 1}]})
    ));
}

#[test]
fn nested_exists_false_when_parent_absent() {
    let p = policy(r#"{"a": {"b": [{"exists": false}]}}"#);
    assert!(body(&p, json!({"c": 1})));
    assert!(body(&p, json!({"a": {"c": 1}})));
    assert!(!body(&p, json!({"a": {"b": 1}})));
}

#[test]
fn bodies_that_are_not_json_objects_never_match() {
    let p = policy(r#"{"a": [{"exists": false}]}"#);
    assert!(body(&p, json!({})));
    assert!(!p.matches_body(b"not json"));
    assert!(!p.matches_body(b"[1, 2]"));
    assert!(!p.matches_body(b"\"a\""));
    assert!(!p.matches_body(b""));
    assert!(!p.matches_body(&[0xff, 0xfe]));
}

#[test]
fn malformed_attributes_count_as_absent() {
    let p = policy(r#"{"n": [{"exists": true}]}"#);
    assert!(!attrs(&p, &[("n", N("twelve"))]));
    assert!(!attrs(&p, &[("n", A("not an array"))]));
    assert!(attrs(&p, &[("n", A("[1]"))]));
    // A repeated attribute name offers every value.
    let p = policy(r#"{"n": ["b"]}"#);
    assert!(attrs(&p, &[("n", S("a")), ("n", S("b"))]));
}

#[test]
fn string_array_elements_keep_their_types() {
    let p = policy(r#"{"v": [{"numeric": [">", 10]}]}"#);
    assert!(attrs(&p, &[("v", A(r#"["a", 11]"#))]));
    assert!(!attrs(&p, &[("v", A(r#"["11"]"#))]));
}

// --- AWS documentation example ---------------------------------------------

#[test]
fn aws_documented_policy_against_documented_message() {
    // The "customer transactions" message from the SNS developer guide.
    let message: &[(&str, AttributeValue<'_>)] = &[
        ("customer_interests", A(r#"["soccer", "rugby", "hockey"]"#)),
        ("store", S("example_corp")),
        ("event", S("order_placed")),
        ("price_usd", N("210.75")),
    ];
    let accepts = policy(
        r#"{"store": ["example_corp"],
            "event": [{"anything-but": "order_cancelled"}],
            "customer_interests": ["rugby", "football", "baseball"],
            "price_usd": [{"numeric": [">=", 100]}]}"#,
    );
    assert!(attrs(&accepts, message));
    let rejects = policy(
        r#"{"store": ["example_corp"],
            "event": ["order_cancelled"],
            "encrypted": [false],
            "customer_interests": ["basketball", "baseball"]}"#,
    );
    assert!(!attrs(&rejects, message));
    // The same policy on the payload form of that message.
    let payload = json!({
        "customer_interests": ["soccer", "rugby", "hockey"],
        "store": "example_corp",
        "event": "order_placed",
        "price_usd": 210.75
    });
    assert!(body(&accepts, payload.clone()));
    assert!(!body(&rejects, payload));
}

// --- validation errors ------------------------------------------------------

#[test]
fn empty_and_non_object_policies() {
    assert_eq!(
        err("{}"),
        PolicyError::Empty {
            path: String::new()
        }
    );
    assert!(matches!(err("[]"), PolicyError::NotAnObject { .. }));
    assert!(matches!(err("\"x\""), PolicyError::NotAnObject { .. }));
    assert!(matches!(err("{"), PolicyError::Json(_)));
    assert_eq!(err(r#"{"a": {}}"#), PolicyError::Empty { path: "a".into() });
}

#[test]
fn values_must_be_arrays_of_rules() {
    assert_eq!(
        err(r#"{"a": "x"}"#),
        PolicyError::NotAnArray { path: "a".into() }
    );
    assert_eq!(
        err(r#"{"a": 5}"#),
        PolicyError::NotAnArray { path: "a".into() }
    );
    assert_eq!(
        err(r#"{"a": []}"#),
        PolicyError::EmptyRules { path: "a".into() }
    );
    assert!(matches!(
        err(r#"{"a": [["x"]]}"#),
        PolicyError::WrongValueType { .. }
    ));
}

#[test]
fn unknown_operators() {
    assert_eq!(
        err(r#"{"a": [{"wildcard": "x*"}]}"#),
        PolicyError::UnknownOperator {
            path: "a".into(),
            operator: "wildcard".into()
        }
    );
    assert!(matches!(
        err(r#"{"a": [{"anything-but": {"numeric": [">", 1]}}]}"#),
        PolicyError::UnknownOperator { .. }
    ));
    assert!(matches!(
        err(r#"{"a": [{}]}"#),
        PolicyError::OperatorCount { count: 0, .. }
    ));
    assert!(matches!(
        err(r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#),
        PolicyError::OperatorCount { count: 2, .. }
    ));
}

#[test]
fn wrong_operand_types() {
    for bad in [
        r#"{"a": [{"prefix": 5}]}"#,
        r#"{"a": [{"suffix": ["x"]}]}"#,
        r#"{"a": [{"equals-ignore-case": null}]}"#,
        r#"{"a": [{"exists": "yes"}]}"#,
        r#"{"a": [{"anything-but": []}]}"#,
        r#"{"a": [{"anything-but": [true]}]}"#,
        r#"{"a": [{"anything-but": {"prefix": 1}}]}"#,
        r#"{"a": [{"cidr": 10}]}"#,
    ] {
        assert!(matches!(err(bad), PolicyError::BadOperand { .. }), "{bad}");
    }
    assert!(matches!(
        err(r#"{"a": [{"cidr": "10.0.0.0/33"}]}"#),
        PolicyError::BadCidr { .. }
    ));
    assert!(matches!(
        err(r#"{"a": [{"cidr": "10.0.0.0"}]}"#),
        PolicyError::BadCidr { .. }
    ));
}

#[test]
fn malformed_ranges() {
    let e = err(r#"{"price": [{"numeric": [">", 10, "<=", 5]}]}"#);
    assert_eq!(
        e.to_string(),
        "\"price\": numeric range needs a lower bound below its upper bound"
    );
    for bad in [
        r#"{"p": [{"numeric": [">", 5, "<", 5]}]}"#,
        r#"{"p": [{"numeric": ["<", 5, ">", 1]}]}"#,
        r#"{"p": [{"numeric": [">", 1, ">", 5]}]}"#,
        r#"{"p": [{"numeric": ["=", 1, "<", 5]}]}"#,
        r#"{"p": [{"numeric": ["!=", 1]}]}"#,
        r#"{"p": [{"numeric": [">"]}]}"#,
        r#"{"p": [{"numeric": [">", "1"]}]}"#,
        r#"{"p": [{"numeric": [">", 1, "<"]}]}"#,
        r#"{"p": [{"numeric": 5}]}"#,
        r#"{"p": [{"numeric": []}]}"#,
    ] {
        assert!(matches!(err(bad), PolicyError::BadRange { .. }), "{bad}");
    }
}

#[test]
fn numbers_out_of_range() {
    assert!(matches!(
        err(r#"{"p": [1e10]}"#),
        PolicyError::NumberOutOfRange { .. }
    ));
    assert!(matches!(
        err(r#"{"p": [{"numeric": [">", -2000000000]}]}"#),
        PolicyError::NumberOutOfRange { .. }
    ));
    policy(r#"{"p": [{"numeric": [">=", -1000000000, "<=", 1000000000]}]}"#);
}

#[test]
fn combination_limit() {
    // 3 x 1 x 2 = 6, from the AWS docs.
    policy(r#"{"key_a": ["v1", "v2", "v3"], "key_b": ["v1"], "key_c": ["v1", "v2"]}"#);
    // The documented $or example: 5 x (2 + 1 x (2 + 3)) = 35.
    policy(
        r#"{"source": ["a", "b", "c", "d", "e"],
            "$or": [{"metricName": ["x", "y"]},
                    {"metricType": ["t"], "$or": [{"metricId": [1, 2]}, {"spaceId": [1, 2, 3]}]}]}"#,
    );
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("\"v{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let at_limit = format!(r#"{{"a": [{}], "b": [{}]}}"#, many(15), many(10));
    policy(&at_limit);
    let over = format!(r#"{{"a": [{}], "b": [{}]}}"#, many(151), many(1));
    assert_eq!(err(&over), PolicyError::TooManyCombinations(151));
    let over = format!(r#"{{"a": [{}], "b": {{"c": [{}]}}}}"#, many(13), many(12));
    assert_eq!(err(&over), PolicyError::TooManyCombinations(156));
    assert!(err(&over).to_string().contains("150"));
}

#[test]
fn key_limit() {
    policy(r#"{"a": ["x"], "b": ["x"], "c": ["x"], "d": ["x"], "e": ["x"]}"#);
    assert!(matches!(
        err(r#"{"a": ["x"], "b": ["x"], "c": ["x"], "d": ["x"], "e": ["x"], "f": ["x"]}"#),
        PolicyError::TooManyKeys { count: 6, .. }
    ));
    // Keys inside $or branches count; nested keys of a body policy do not.
    assert!(matches!(
        err(
            r#"{"a": ["x"], "b": ["x"], "c": ["x"], "$or": [{"d": ["x"]}, {"e": ["x"], "f": ["x"]}]}"#
        ),
        PolicyError::TooManyKeys { count: 6, .. }
    ));
    policy(r#"{"a": {"b": ["x"], "c": ["x"], "d": ["x"], "e": ["x"], "f": ["x"], "g": ["x"]}}"#);
}

#[test]
fn depth_limit() {
    let mut text = String::from(r#"["x"]"#);
    for _ in 0..30 {
        text = format!(r#"{{"k": {text}}}"#);
    }
    assert!(matches!(err(&text), PolicyError::TooDeep { .. }));
    assert!(err(&text).to_string().contains("k.k.k"));
}

#[test]
fn error_paths_name_nested_and_or_keys() {
    let e =
        err(r#"{"detail": {"$or": [{"a": ["x"]}, {"price": [{"numeric": [">", 2, "<", 1]}]}]}}"#);
    assert_eq!(
        e.to_string(),
        "\"detail.$or[1].price\": numeric range needs a lower bound below its upper bound"
    );
}

#[test]
fn attribute_scope_refuses_nesting() {
    let nested = r#"{"a": {"b": ["x"]}}"#;
    assert_eq!(
        FilterPolicy::parse_for(nested, Scope::Attributes),
        Err(PolicyError::NestedInAttributes { path: "a".into() })
    );
    assert!(FilterPolicy::parse_for(nested, Scope::Body).is_ok());
    assert!(FilterPolicy::parse_for(r#"{"a": ["x"]}"#, Scope::Attributes).is_ok());
    let or_nested = r#"{"$or": [{"a": ["x"]}, {"b": {"c": ["y"]}}]}"#;
    assert!(matches!(
        FilterPolicy::parse_for(or_nested, Scope::Attributes),
        Err(PolicyError::NestedInAttributes { .. })
    ));
}

#[test]
fn too_large() {
    let big = format!(r#"{{"a": ["{}"]}}"#, "x".repeat(300 * 1024));
    assert!(matches!(err(&big), PolicyError::TooLarge(_)));
}

#[test]
fn from_value_equals_parse() {
    let v = json!({"a": ["x", {"prefix": "y"}], "b": {"c": [{"numeric": ["<", 3]}]}});
    assert_eq!(
        FilterPolicy::from_value(&v),
        FilterPolicy::parse(&v.to_string())
    );
}

// --- property tests ---------------------------------------------------------

fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec![
        "a",
        "b",
        "$or",
        "numeric",
        "prefix",
        "suffix",
        "anything-but",
        "exists",
        "equals-ignore-case",
        "cidr",
        "=",
        ">",
        "<=",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-2e9f64..2e9).prop_map(Value::from),
        prop::sample::select(vec!["a", "b", ">", "<=", "=", "10.0.0.0/8", "x", ""])
            .prop_map(Value::from),
        ".{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5).prop_map(|kvs| {
                Value::Object(kvs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

fn arb_attribute() -> impl Strategy<Value = (String, u8, String)> {
    (
        prop::sample::select(vec!["a", "b", "c", "$or"]).prop_map(str::to_owned),
        0u8..3,
        prop_oneof![".{0,8}", arb_json().prop_map(|v| v.to_string())],
    )
}

/// Policies built to be mostly valid, so matching sees real rule mixes.
fn arb_policy() -> impl Strategy<Value = Value> {
    let rule = prop::sample::select(vec![
        json!("x"),
        json!(1),
        json!(true),
        json!(null),
        json!({"prefix": "a"}),
        json!({"suffix": "b"}),
        json!({"equals-ignore-case": "X"}),
        json!({"anything-but": ["x", 1]}),
        json!({"anything-but": {"prefix": "a"}}),
        json!({"numeric": [">", 0, "<=", 5]}),
        json!({"numeric": ["=", 1]}),
        json!({"exists": true}),
        json!({"exists": false}),
        json!({"cidr": "10.0.0.0/8"}),
    ]);
    let key = prop::sample::select(vec!["a", "b", "c"]);
    let leaf = prop::collection::vec(rule, 1..4).prop_map(Value::Array);
    leaf.prop_recursive(3, 24, 3, move |inner| {
        let object = prop::collection::btree_map(key.clone(), inner, 1..3)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
        prop_oneof![
            object.clone(),
            prop::collection::vec(object, 2..3).prop_map(|branches| json!({"$or": branches})),
        ]
    })
    .prop_filter("a policy is an object", Value::is_object)
}

const SAMPLE_POLICIES: &[&str] = &[
    r#"{"a": ["x", 1, true, null, {"prefix": "a"}, {"suffix": "b"}, {"equals-ignore-case": "X"}]}"#,
    r#"{"a": [{"numeric": [">", 0, "<=", 150]}, {"anything-but": [1, "x"]}, {"exists": false}]}"#,
    r#"{"a": [{"anything-but": {"prefix": "p"}}, {"cidr": "10.0.0.0/8"}], "b": [{"exists": true}]}"#,
    r#"{"$or": [{"a": ["x"]}, {"b": {"c": [{"numeric": ["=", 3]}]}}]}"#,
    r#"{"a": {"b": {"c": [{"exists": false}]}}}"#,
];

proptest! {
    // No regression files: this crate's tests write nothing into the tree.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics(v in arb_json()) {
        // Text and value may differ in a float's last bit, so each stands alone.
        for result in [FilterPolicy::from_value(&v), FilterPolicy::parse(&v.to_string())] {
            if let Err(e) = result {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn parse_never_panics_on_text(text in ".{0,64}") {
        let _ = FilterPolicy::parse(&text);
    }

    #[test]
    fn matching_never_panics(
        policy_json in arb_json(),
        built_policy in arb_policy(),
        body_json in arb_json(),
        raw_body in prop::collection::vec(any::<u8>(), 0..32),
        attributes in prop::collection::vec(arb_attribute(), 0..5),
    ) {
        let mut policies: Vec<FilterPolicy> =
            SAMPLE_POLICIES.iter().map(|p| FilterPolicy::parse(p).unwrap()).collect();
        policies.extend(FilterPolicy::from_value(&policy_json));
        // Deep random nesting can pass the combination limit; skip those.
        policies.extend(FilterPolicy::from_value(&built_policy));
        let attrs: Vec<(&str, AttributeValue<'_>)> = attributes
            .iter()
            .map(|(name, kind, value)| {
                let v = match kind {
                    0 => AttributeValue::String(value),
                    1 => AttributeValue::Number(value),
                    _ => AttributeValue::StringArray(value),
                };
                (name.as_str(), v)
            })
            .collect();
        for p in &policies {
            let _ = p.matches_attributes(&attrs);
            let _ = p.matches_body(body_json.to_string().as_bytes());
            let _ = p.matches_body(&raw_body);
        }
    }
}
