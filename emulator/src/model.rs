//! The EventBridge service-model excerpt and generic input validation against it.
//!
//! Every request body is checked against the shapes of the official model
//! (`model/eventbridge-partner-api.json`, copied from the project's reference
//! material) instead of hand-written checks per operation, so the emulator
//! rejects exactly what the model forbids and names the member the way AWS does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// The compiled-in model text.
const MODEL_JSON: &str = include_str!("../model/eventbridge-partner-api.json");

/// The parsed model, built on first use.
static MODEL: LazyLock<Model> = LazyLock::new(|| {
    // Invariant: the model is compiled into the binary and `model_parses` below
    // pins that it parses, so a failure here can only be a broken build.
    Model::parse(MODEL_JSON).expect("the compiled-in service model parses")
});

/// Why a request body does not fit the model: the AWS error code it answers
/// (`SerializationException` or `ValidationException`) and AWS's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidInput {
    /// The error code.
    pub code: &'static str,
    /// The message naming every violation.
    pub message: String,
}

impl InvalidInput {
    fn validation(message: String) -> InvalidInput {
        InvalidInput {
            code: "ValidationException",
            message,
        }
    }
}

/// The parsed service model: operations and the shapes they use.
#[derive(Debug)]
pub(crate) struct Model {
    operations: BTreeMap<String, Operation>,
    shapes: HashMap<String, Shape>,
}

/// One operation of the model.
#[derive(Debug)]
pub(crate) struct Operation {
    /// The input structure's shape name, if the operation takes input.
    input: Option<String>,
    /// The error shapes the operation documents.
    errors: Vec<String>,
}

/// One shape with the constraints the emulator enforces.
#[derive(Debug)]
struct Shape {
    kind: ShapeKind,
    min: Option<i64>,
    max: Option<i64>,
    /// The pattern as written in the model (for messages) and anchored for matching.
    pattern: Option<(String, Regex)>,
    enum_values: Option<Vec<String>>,
    /// Exception shapes marked `"fault": true` are server faults (HTTP 500).
    fault: bool,
}

#[derive(Debug)]
enum ShapeKind {
    Structure {
        /// Members in model order (the model lists them alphabetically).
        members: Vec<(String, String)>,
        required: HashSet<String>,
    },
    List {
        member: String,
    },
    Map {
        value: String,
    },
    String,
    Integer,
    Long,
    Float,
    Boolean,
    Timestamp,
    Blob,
}

impl Model {
    /// The model compiled into the emulator.
    pub(crate) fn get() -> &'static Model {
        &MODEL
    }

    fn parse(text: &str) -> Result<Model, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut operations = BTreeMap::new();
        for (name, op) in doc
            .get("operations")
            .and_then(Value::as_object)
            .ok_or("model has no operations")?
        {
            let input = op
                .pointer("/input/shape")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let errors = op
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("shape").and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
            operations.insert(name.clone(), Operation { input, errors });
        }
        let mut shapes = HashMap::new();
        for (name, raw) in doc
            .get("shapes")
            .and_then(Value::as_object)
            .ok_or("model has no shapes")?
        {
            shapes.insert(
                name.clone(),
                Shape::parse(raw).map_err(|e| format!("shape {name}: {e}"))?,
            );
        }
        let model = Model { operations, shapes };
        model.check_references()?;
        Ok(model)
    }

    /// Every shape reference resolves, so validation never meets a dangling name.
    fn check_references(&self) -> Result<(), String> {
        let known = |target: &str| {
            if self.shapes.contains_key(target) {
                Ok(())
            } else {
                Err(format!("unknown shape {target}"))
            }
        };
        for op in self.operations.values() {
            if let Some(input) = &op.input {
                known(input)?;
            }
        }
        for shape in self.shapes.values() {
            match &shape.kind {
                ShapeKind::Structure { members, .. } => {
                    for (_, target) in members {
                        known(target)?;
                    }
                }
                ShapeKind::List { member } => known(member)?,
                ShapeKind::Map { value } => known(value)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether the model defines an operation of this name.
    pub(crate) fn has_operation(&self, name: &str) -> bool {
        self.operations.contains_key(name)
    }

    /// Names of all operations in the model, sorted.
    pub(crate) fn operation_names(&self) -> impl Iterator<Item = &str> {
        self.operations.keys().map(String::as_str)
    }

    /// Whether `operation` lists the error shape `code` in the model.
    pub(crate) fn documents_error(&self, operation: &str, code: &str) -> bool {
        self.operations
            .get(operation)
            .is_some_and(|op| op.errors.iter().any(|e| e == code))
    }

    /// Whether an error code names an exception the model marks as a server fault.
    pub(crate) fn is_fault(&self, code: &str) -> bool {
        self.shapes.get(code).is_some_and(|s| s.fault)
    }

    /// Checks an operation's input against its shapes.
    ///
    /// A JSON value of the wrong type answers `SerializationException` (the
    /// service cannot even read it); constraint violations answer one
    /// `ValidationException` listing every violation, as AWS does.
    pub(crate) fn validate_input(
        &self,
        operation: &str,
        input: &Value,
    ) -> Result<(), InvalidInput> {
        let Some(shape) = self
            .operations
            .get(operation)
            .and_then(|op| op.input.as_deref())
        else {
            return Ok(());
        };
        let mut violations = Vec::new();
        self.check(shape, input, "", &mut violations)
            .map_err(|message| InvalidInput {
                code: "SerializationException",
                message,
            })?;
        match violations.len() {
            0 => Ok(()),
            1 => Err(InvalidInput::validation(format!(
                "1 validation error detected: {}",
                violations[0]
            ))),
            n => Err(InvalidInput::validation(format!(
                "{n} validation errors detected: {}",
                violations.join("; ")
            ))),
        }
    }

    /// Checks `value` against the shape `shape_name`: a JSON type the shape
    /// cannot take is the `Err` (a `SerializationException`), constraint
    /// violations are collected in `violations`.
    fn check(
        &self,
        shape_name: &str,
        value: &Value,
        path: &str,
        violations: &mut Vec<String>,
    ) -> Result<(), String> {
        let Some(shape) = self.shapes.get(shape_name) else {
            // `check_references` rules this out; treat it as "nothing to check".
            return Ok(());
        };
        match &shape.kind {
            ShapeKind::Structure { members, required } => {
                let Some(object) = value.as_object() else {
                    return Err(unexpected(value, "structure"));
                };
                for (member, target) in members {
                    let child = member_path(path, member);
                    match object.get(member) {
                        None | Some(Value::Null) => {
                            if required.contains(member) {
                                violations.push(format!(
                                    "Value null at '{child}' failed to satisfy constraint: Member must not be null"
                                ));
                            }
                        }
                        Some(v) => self.check(target, v, &child, violations)?,
                    }
                }
            }
            ShapeKind::List { member } => {
                let Some(items) = value.as_array() else {
                    return Err(unexpected(value, "list"));
                };
                shape.check_length(value, items.len(), path, violations);
                for (i, item) in items.iter().enumerate() {
                    let child = format!("{path}.{}.member", i + 1);
                    self.check(member, item, &child, violations)?;
                }
            }
            ShapeKind::Map { value: target } => {
                let Some(entries) = value.as_object() else {
                    return Err(unexpected(value, "map"));
                };
                shape.check_length(value, entries.len(), path, violations);
                for (key, item) in entries {
                    self.check(target, item, &format!("{path}.{key}"), violations)?;
                }
            }
            _ => shape.check_scalar(value, path, violations)?,
        }
        Ok(())
    }
}

impl Shape {
    fn parse(raw: &Value) -> Result<Shape, String> {
        let kind = ShapeKind::parse(raw)?;
        let pattern = match raw.get("pattern").and_then(Value::as_str) {
            Some(source) => Some((source.to_owned(), anchored(source)?)),
            None => None,
        };
        let enum_values = raw.get("enum").and_then(Value::as_array).map(|values| {
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        });
        Ok(Shape {
            kind,
            min: raw.get("min").and_then(Value::as_i64),
            max: raw.get("max").and_then(Value::as_i64),
            pattern,
            enum_values,
            fault: raw.get("fault").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// Checks a value of a shape that is neither structure, list nor map.
    fn check_scalar(
        &self,
        value: &Value,
        path: &str,
        violations: &mut Vec<String>,
    ) -> Result<(), String> {
        match &self.kind {
            ShapeKind::String => {
                let Some(s) = value.as_str() else {
                    return Err(unexpected(value, "String"));
                };
                self.check_string(value, s, path, violations);
            }
            ShapeKind::Integer | ShapeKind::Long => {
                let number = value.as_i64().filter(|n| {
                    !matches!(self.kind, ShapeKind::Integer) || i32::try_from(*n).is_ok()
                });
                let Some(n) = number else {
                    return Err(unexpected(value, "Integer"));
                };
                self.check_range(n, path, violations);
            }
            ShapeKind::Float | ShapeKind::Timestamp => {
                // The JSON protocol sends timestamps as epoch seconds.
                if !value.is_number() {
                    return Err(unexpected(value, "Number"));
                }
            }
            ShapeKind::Boolean => {
                if !value.is_boolean() {
                    return Err(unexpected(value, "Boolean"));
                }
            }
            ShapeKind::Blob => {
                if !value.is_string() {
                    return Err(unexpected(value, "Blob"));
                }
            }
            // `Model::check` handles the aggregate shapes itself.
            ShapeKind::Structure { .. } | ShapeKind::List { .. } | ShapeKind::Map { .. } => {}
        }
        Ok(())
    }

    /// A string's length, pattern and enumeration constraints.
    fn check_string(&self, value: &Value, s: &str, path: &str, violations: &mut Vec<String>) {
        // Java strings, and so AWS's length limits, count UTF-16 units.
        self.check_length(value, s.encode_utf16().count(), path, violations);
        if let Some((source, regex)) = &self.pattern
            && !regex.is_match(s)
        {
            violations.push(format!(
                "Value '{s}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {source}"
            ));
        }
        if let Some(allowed) = &self.enum_values
            && !allowed.iter().any(|a| a == s)
        {
            violations.push(format!(
                "Value '{s}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ));
        }
    }

    /// A number's `min` and `max` constraints.
    fn check_range(&self, n: i64, path: &str, violations: &mut Vec<String>) {
        if let Some(min) = self.min
            && n < min
        {
            violations.push(format!(
                "Value '{n}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
            ));
        }
        if let Some(max) = self.max
            && n > max
        {
            violations.push(format!(
                "Value '{n}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"
            ));
        }
    }

    fn check_length(&self, value: &Value, len: usize, path: &str, violations: &mut Vec<String>) {
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        if let Some(min) = self.min
            && len < min
        {
            violations.push(format!(
                "Value '{shown}' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
            ));
        }
        if let Some(max) = self.max
            && len > max
        {
            violations.push(format!(
                "Value '{shown}' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}"
            ));
        }
    }
}

impl ShapeKind {
    /// The shape's type and, for aggregates, the shapes of its parts.
    fn parse(raw: &Value) -> Result<ShapeKind, String> {
        Ok(
            match raw.get("type").and_then(Value::as_str).unwrap_or("") {
                "structure" => ShapeKind::parse_structure(raw)?,
                "list" => ShapeKind::List {
                    member: raw
                        .pointer("/member/shape")
                        .and_then(Value::as_str)
                        .ok_or("list without member")?
                        .to_owned(),
                },
                "map" => ShapeKind::Map {
                    value: raw
                        .pointer("/value/shape")
                        .and_then(Value::as_str)
                        .ok_or("map without value")?
                        .to_owned(),
                },
                "string" => ShapeKind::String,
                "integer" => ShapeKind::Integer,
                "long" => ShapeKind::Long,
                "float" | "double" => ShapeKind::Float,
                "boolean" => ShapeKind::Boolean,
                "timestamp" => ShapeKind::Timestamp,
                "blob" => ShapeKind::Blob,
                other => return Err(format!("unsupported type {other:?}")),
            },
        )
    }

    /// A structure's members (with their shapes) and required member names.
    fn parse_structure(raw: &Value) -> Result<ShapeKind, String> {
        let members = raw
            .get("members")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(name, member)| {
                        member
                            .get("shape")
                            .and_then(Value::as_str)
                            .map(|target| (name.clone(), target.to_owned()))
                            .ok_or_else(|| format!("member {name} has no shape"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let required = raw
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(ShapeKind::Structure { members, required })
    }
}

/// Compiles a model pattern so that it must match the whole value, as the
/// service (Java `String.matches`) applies it.
fn anchored(source: &str) -> Result<Regex, String> {
    let whole = format!("^(?:{source})$");
    // Java's `\d` and friends are ASCII-only; Rust's are Unicode unless told
    // otherwise. Patterns that need Unicode mode (e.g. a bare `.`) fall back.
    regex::RegexBuilder::new(&whole)
        .unicode(false)
        .build()
        .or_else(|_| Regex::new(&whole))
        .map_err(|e| format!("pattern {source:?}: {e}"))
}

/// The path AWS uses in validation messages: lowerCamelCase member names
/// joined by dots.
fn member_path(parent: &str, member: &str) -> String {
    let mut chars = member.chars();
    let camel: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    if parent.is_empty() {
        camel
    } else {
        format!("{parent}.{camel}")
    }
}

/// The `SerializationException` message for a JSON value of the wrong type.
fn unexpected(value: &Value, expected: &str) -> String {
    match value {
        Value::Object(_) => "Start of structure or map found where not expected.".to_owned(),
        Value::Array(_) => "Start of list found where not expected".to_owned(),
        Value::String(_) => format!("STRING_VALUE can not be converted to {expected}"),
        Value::Number(_) => format!("NUMBER_VALUE can not be converted to {expected}"),
        Value::Bool(_) => format!("BOOLEAN_VALUE can not be converted to {expected}"),
        Value::Null => format!("null can not be converted to {expected}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validate(op: &str, input: Value) -> Result<(), InvalidInput> {
        Model::get().validate_input(op, &input)
    }

    #[test]
    fn model_parses() {
        let model = Model::parse(MODEL_JSON).expect("model parses");
        assert!(model.has_operation("CreatePartnerEventSource"));
        assert!(model.is_fault("InternalException"));
        assert!(!model.is_fault("ResourceNotFoundException"));
    }

    #[test]
    fn accepts_a_valid_create() {
        validate(
            "CreatePartnerEventSource",
            json!({"Name": "aws.partner/acme.com/c1/orders", "Account": "123456789012"}),
        )
        .expect("valid");
    }

    #[test]
    fn names_the_member_and_pattern() {
        let err = validate(
            "CreatePartnerEventSource",
            json!({"Name": "acme.com/c1/orders", "Account": "123456789012"}),
        )
        .expect_err("invalid");
        assert_eq!(err.code, "ValidationException");
        assert_eq!(
            err.message,
            "1 validation error detected: Value 'acme.com/c1/orders' at 'name' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: aws\\.partner(/[\\.\\-_A-Za-z0-9]+){2,}"
        );
    }

    #[test]
    fn pattern_is_anchored_over_the_whole_value() {
        let err = validate(
            "CreatePartnerEventSource",
            json!({"Name": "x-aws.partner/acme.com/c1", "Account": "123456789012"}),
        )
        .expect_err("prefix before the pattern is rejected");
        assert!(err.message.contains("at 'name'"), "{}", err.message);
        // One segment after aws.partner is not enough: {2,}.
        assert!(
            validate(
                "DescribePartnerEventSource",
                json!({"Name": "aws.partner/acme.com"})
            )
            .is_err()
        );
    }

    #[test]
    fn reports_every_violation_of_an_account() {
        let err = validate(
            "CreatePartnerEventSource",
            json!({"Name": "aws.partner/acme.com/c1/orders", "Account": "12345678901"}),
        )
        .expect_err("11 digits");
        assert_eq!(
            err.message,
            "2 validation errors detected: Value '12345678901' at 'account' failed to satisfy constraint: \
             Member must have length greater than or equal to 12; Value '12345678901' at 'account' failed to \
             satisfy constraint: Member must satisfy regular expression pattern: \\d{12}"
        );
    }

    #[test]
    fn digits_are_ascii_only() {
        let err = validate(
            "CreatePartnerEventSource",
            json!({"Name": "aws.partner/acme.com/c1/orders", "Account": "١٢٣٤٥٦٧٨٩٠١٢"}),
        )
        .expect_err("Arabic-Indic digits are not \\d for AWS");
        assert!(
            err.message.contains("regular expression"),
            "{}",
            err.message
        );
    }

    #[test]
    fn required_members_are_reported_null() {
        let err = validate("CreatePartnerEventSource", json!({})).expect_err("missing");
        assert_eq!(
            err.message,
            "2 validation errors detected: Value null at 'account' failed to satisfy constraint: Member must not \
             be null; Value null at 'name' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn integer_bounds_and_types() {
        let err = validate(
            "ListPartnerEventSources",
            json!({"NamePrefix": "aws.partner/acme.com/", "Limit": 101}),
        )
        .expect_err("too big");
        assert!(
            err.message.ends_with(
                "Value '101' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100"
            ),
            "{}",
            err.message
        );
        let err = validate(
            "ListPartnerEventSources",
            json!({"NamePrefix": "aws.partner/acme.com/", "Limit": "5"}),
        )
        .expect_err("string for integer");
        assert_eq!(err.code, "SerializationException");
    }

    #[test]
    fn nested_members_enums_and_lists() {
        let err = validate(
            "CreateEventBus",
            json!({"Name": "bus", "LogConfig": {"Level": "LOUD"}, "Tags": [{"Key": ""}]}),
        )
        .expect_err("invalid");
        assert!(
            err.message.contains(
                "Value 'LOUD' at 'logConfig.level' failed to satisfy constraint: Member must satisfy enum value set: [OFF, ERROR, INFO, TRACE]"
            ),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("at 'tags.1.member.key'"),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("Value null at 'tags.1.member.value' failed"),
            "{}",
            err.message
        );
    }

    #[test]
    fn wrong_json_type_is_a_serialization_error() {
        let err =
            validate("DescribePartnerEventSource", json!({"Name": {"a": 1}})).expect_err("object");
        assert_eq!(err.code, "SerializationException");
        let err = validate("DescribePartnerEventSource", json!([1])).expect_err("array");
        assert_eq!(err.code, "SerializationException");
    }

    #[test]
    fn lengths_count_utf16_units() {
        let long = format!("aws.partner/acme.com/{}", "a".repeat(235));
        assert_eq!(long.len(), 256);
        validate("DescribePartnerEventSource", json!({ "Name": long })).expect("256 is allowed");
        let err = validate(
            "DescribePartnerEventSource",
            json!({ "Name": format!("{long}a") }),
        )
        .expect_err("257");
        assert!(
            err.message
                .contains("Member must have length less than or equal to 256")
        );
    }
}
