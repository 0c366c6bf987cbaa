//! The template's YAML as JSON, CloudFormation short-form tags (`!Ref X`) turned into their long
//! form (`{"Ref": "X"}`, `{"Fn::GetAtt": ...}`).

use serde_json::{Map, Value};
use serde_norway::Value as Yaml;

use super::TemplateError;

/// A template as JSON.
pub fn document(text: &str) -> Result<Value, TemplateError> {
    let yaml: Yaml = serde_norway::from_str(text)?;
    Ok(to_json(yaml))
}

fn to_json(value: Yaml) -> Value {
    match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::Mapping(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (key(k), to_json(v))).collect())
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let long = match name {
                "Ref" | "Condition" => name.to_owned(),
                _ => format!("Fn::{name}"),
            };
            // `!GetAtt X.Arn` is the string form of `Fn::GetAtt: [X, Arn]`.
            Value::Object(Map::from_iter([(long, to_json(tagged.value))]))
        }
    }
}

fn key(key: Yaml) -> String {
    match key {
        Yaml::String(s) => s,
        other => serde_norway::to_string(&other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}
