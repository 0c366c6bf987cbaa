//! Intrinsic functions: which ones the local runtime evaluates ([`SUPPORTED`]), and
//! [`Resolver`], which resolves them against the provisioned resources and the parameters.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::conditions::single;
use super::{scalar, TemplateError};

/// The intrinsic functions left after conditions are applied that the runtime resolves.
pub const SUPPORTED: &[&str] = &["Ref", "Fn::GetAtt", "Fn::Sub"];

/// The first intrinsic function inside `value` that the runtime cannot evaluate.
pub fn unsupported(value: &Value) -> Option<String> {
    if let Some((key, argument)) = single(value) {
        if key.starts_with("Fn::") && !SUPPORTED.contains(&key) {
            return Some(key.to_owned());
        }
        return unsupported(argument);
    }
    match value {
        Value::Object(map) => map.values().find_map(unsupported),
        Value::Array(items) => items.iter().find_map(unsupported),
        _ => None,
    }
}

/// What a provisioned resource answers to `Ref` and `Fn::GetAtt X.Arn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Physical {
    /// The physical name (queue name, table name, topic name).
    pub name: String,
    /// What `Ref` returns: a queue's URL, a topic's ARN, a table's name.
    pub reference: String,
    pub arn: String,
}

/// Resolves intrinsic functions against provisioned resources and parameter values.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    pub resources: BTreeMap<String, Physical>,
    pub parameters: BTreeMap<String, String>,
    pub region: String,
    pub account_id: String,
}

impl Resolver {
    /// Resolves `value` to a string (numbers and booleans as their text).
    pub fn string(&self, value: &Value) -> Result<String, TemplateError> {
        match self.resolve(value)? {
            Value::String(s) => Ok(s),
            other => scalar(&other).ok_or_else(|| TemplateError::Unresolved(other.to_string())),
        }
    }

    /// Resolves every intrinsic function inside `value`.
    pub fn resolve(&self, value: &Value) -> Result<Value, TemplateError> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, argument) = map
                    .iter()
                    .next()
                    .into_iter()
                    .next()
                    .ok_or_else(|| TemplateError::Unresolved(value.to_string()))?;
                match key.as_str() {
                    "Ref" => self
                        .reference(argument.as_str().unwrap_or_default())
                        .map(Value::String),
                    "Fn::GetAtt" => {
                        let path = match argument {
                            Value::Array(parts) => parts
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join("."),
                            other => other.as_str().unwrap_or_default().to_owned(),
                        };
                        self.attribute(&path).map(Value::String)
                    }
                    "Fn::Sub" => self.substitute(argument).map(Value::String),
                    other if other.starts_with("Fn::") => Err(TemplateError::Unresolved(format!(
                        "{other} is not supported"
                    ))),
                    _ => Ok(Value::Object(self.resolve_map(map)?)),
                }
            }
            Value::Object(map) => Ok(Value::Object(self.resolve_map(map)?)),
            Value::Array(items) => items
                .iter()
                .map(|item| self.resolve(item))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }

    fn resolve_map(&self, map: &Map<String, Value>) -> Result<Map<String, Value>, TemplateError> {
        map.iter()
            .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
            .collect()
    }

    /// `Ref name`: a pseudo parameter, a parameter, or a provisioned resource.
    pub fn reference(&self, name: &str) -> Result<String, TemplateError> {
        let pseudo = match name {
            "AWS::Region" => Some(self.region.clone()),
            "AWS::AccountId" => Some(self.account_id.clone()),
            "AWS::Partition" => Some("aws".to_owned()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_owned()),
            "AWS::StackName" => Some("local".to_owned()),
            _ => None,
        };
        pseudo
            .or_else(|| self.parameters.get(name).cloned())
            .or_else(|| self.resources.get(name).map(|r| r.reference.clone()))
            .ok_or_else(|| TemplateError::Unresolved(format!("Ref {name}")))
    }

    /// `Fn::GetAtt resource.attribute` (`Arn`, `QueueUrl`, `QueueName`/`TopicName`/`Name`).
    pub fn attribute_of(&self, resource: &str, attribute: &str) -> Result<String, TemplateError> {
        self.attribute(&format!("{resource}.{attribute}"))
    }

    fn attribute(&self, path: &str) -> Result<String, TemplateError> {
        let (resource, attribute) = path.split_once('.').unwrap_or((path, ""));
        let physical = self
            .resources
            .get(resource)
            .ok_or_else(|| TemplateError::Unresolved(format!("GetAtt {path}")))?;
        match attribute {
            "Arn" => Ok(physical.arn.clone()),
            "QueueName" | "TopicName" | "Name" => Ok(physical.name.clone()),
            "QueueUrl" => Ok(physical.reference.clone()),
            _ => Err(TemplateError::Unresolved(format!("GetAtt {path}"))),
        }
    }

    fn substitute(&self, argument: &Value) -> Result<String, TemplateError> {
        let (text, variables) = match argument {
            Value::Array(parts) => (
                parts.first().and_then(Value::as_str).unwrap_or_default(),
                parts.get(1).and_then(Value::as_object),
            ),
            other => (other.as_str().unwrap_or_default(), None),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| TemplateError::Unresolved(format!("Sub {text}")))?;
            let name = &after[..end];
            let value = match variables.and_then(|v| v.get(name)) {
                Some(value) => self.string(value)?,
                None if name.contains('.') && !name.starts_with("AWS::") => self.attribute(name)?,
                None => self.reference(name)?,
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}
