//! A check of tool arguments against the subset of JSON Schema tools use: object `type`,
//! `required`, property `type`s (including arrays of types), `enum`, `additionalProperties:
//! false`, and nested objects and arrays. Enough to turn a model's malformed call into a clear
//! message for it, not a general validator.

use serde_json::Value;

/// `Ok` when `value` fits `schema`; otherwise what is wrong, naming the path.
pub(crate) fn check(schema: &Value, value: &Value) -> Result<(), String> {
    check_at(schema, value, "arguments")
}

fn check_at(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.iter().any(|t| is_type(value, t)) {
            return Err(format!(
                "{path} must be {} (got {})",
                allowed.join(" or "),
                type_name(value)
            ));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            return Err(format!(
                "{path} must be one of {}",
                Value::Array(options.clone())
            ));
        }
    }
    if let Value::Object(map) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    return Err(format!("{path}.{name} is required"));
                }
            }
        }
        for (key, v) in map {
            match properties.and_then(|p| p.get(key)) {
                Some(sub) => check_at(sub, v, &format!("{path}.{key}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{path}.{key} is not a known argument"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check_at(item_schema, item, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_required_types_enums_and_extras() {
        let schema = json!({"type": "object", "required": ["a"], "additionalProperties": false,
            "properties": {"a": {"type": "integer"}, "b": {"enum": ["x", "y"]},
                           "c": {"type": "array", "items": {"type": "string"}}}});
        assert!(check(&schema, &json!({"a": 1, "b": "x", "c": ["q"]})).is_ok());
        assert!(check(&schema, &json!({}))
            .expect_err("invalid")
            .contains("arguments.a is required"));
        assert!(check(&schema, &json!({"a": 1.5}))
            .expect_err("invalid")
            .contains("integer"));
        assert!(check(&schema, &json!({"a": 1, "b": "z"}))
            .expect_err("invalid")
            .contains("one of"));
        assert!(check(&schema, &json!({"a": 1, "c": [1]}))
            .expect_err("invalid")
            .contains("arguments.c[0]"));
        assert!(check(&schema, &json!({"a": 1, "d": 0}))
            .expect_err("invalid")
            .contains("not a known"));
        assert!(check(&schema, &json!([1]))
            .expect_err("invalid")
            .contains("must be object"));
    }
}
