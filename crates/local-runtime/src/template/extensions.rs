//! CloudFormation's `AWS::LanguageExtensions` transform, as far as templates of this project use
//! it: `Fn::ForEach` loops, and `Fn::FindInMap` whose arguments are known once the loops are
//! expanded. It runs first, as CloudFormation runs the transform before SAM's, so everything
//! after it (conditions, intrinsics, the topology, the template rules) sees plain resources.
//!
//! `Fn::ForEach`, as AWS documents it:
//!
//! - `Fn::ForEach::<UniqueLoopName>: [Identifier, Collection, {OutputKey: OutputValue, ...}]` in
//!   the `Resources`, `Conditions` and `Outputs` sections; loops nest (at most 5 deep).
//! - The collection is a list of strings, or an intrinsic function that gives one (`Ref` to a
//!   `CommaDelimitedList` parameter, `Fn::FindInMap`).
//! - For each item, every OutputKey is generated with `${Identifier}` replaced by the item and
//!   `&{Identifier}` by the item without its non-alphanumeric characters; in the OutputValue,
//!   `{"Ref": Identifier}` becomes the item, and `${Identifier}` and `&{Identifier}` are
//!   replaced the same way in every string (so `!Ref ${Identifier}Queue` names the generated
//!   queue).
//! - The identifier may not be a parameter's name; two generated keys that are the same, or the
//!   same as a key written out, are an error.
//!
//! `Fn::FindInMap: [MapName, TopLevelKey, SecondLevelKey]` (with an optional fourth argument
//! `{DefaultValue: ...}`) is replaced by the mapping's value when its keys are strings, or
//! `Ref`s to parameters; any other is left for CloudFormation.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{problem, TemplateError};

/// The prefix of a loop's key.
pub const FOR_EACH: &str = "Fn::ForEach::";
/// The sections loops may appear in.
const SECTIONS: &[&str] = &["Resources", "Conditions", "Outputs"];
/// How deep loops may nest.
const MAX_DEPTH: usize = 5;

/// `template` with its loops expanded and its resolvable `Fn::FindInMap`s replaced.
/// `parameters` are the parameter values (defaults with overrides), for collections and map
/// keys given by `Ref`.
pub fn expand(
    mut template: Value,
    parameters: &BTreeMap<String, String>,
) -> Result<Value, TemplateError> {
    let declared: Vec<String> = template["Parameters"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let context = Context {
        mappings: template["Mappings"].clone(),
        parameters,
        declared: &declared,
    };
    for section in SECTIONS {
        if let Some(Value::Object(entries)) = template.get(*section) {
            let expanded = context.section(section, entries, 0)?;
            template[*section] = Value::Object(expanded);
        }
    }
    let mappings = template["Mappings"].clone();
    if let Value::Object(root) = &mut template {
        for (name, value) in root.iter_mut() {
            if name != "Mappings" {
                *value = literal_names(find_in_map(value.clone(), &mappings, parameters)?);
            }
        }
    }
    Ok(template)
}

struct Context<'a> {
    mappings: Value,
    parameters: &'a BTreeMap<String, String>,
    declared: &'a [String],
}

impl Context<'_> {
    /// A section's (or a loop body's) entries with every loop in it expanded.
    fn section(
        &self,
        section: &str,
        entries: &Map<String, Value>,
        depth: usize,
    ) -> Result<Map<String, Value>, TemplateError> {
        let mut out = Map::new();
        for (key, value) in entries {
            let generated = match key.strip_prefix(FOR_EACH) {
                Some(name) => self.for_each(section, name, value, depth + 1)?,
                None => Map::from_iter([(key.clone(), value.clone())]),
            };
            for (key, value) in generated {
                if out.insert(key.clone(), value).is_some() {
                    return Err(problem(
                        &key,
                        format!("{section} has {key} twice (a loop generated it again)"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The entries one loop generates.
    fn for_each(
        &self,
        section: &str,
        name: &str,
        loop_value: &Value,
        depth: usize,
    ) -> Result<Map<String, Value>, TemplateError> {
        let at = format!("{FOR_EACH}{name}");
        if depth > MAX_DEPTH {
            return Err(problem(&at, format!("loops nest deeper than {MAX_DEPTH}")));
        }
        let layout = || {
            problem(
                &at,
                "must be [Identifier, Collection, {OutputKey: OutputValue}]",
            )
        };
        let [identifier, collection, body] =
            loop_value.as_array().map(Vec::as_slice).unwrap_or_default()
        else {
            return Err(layout());
        };
        let (Some(identifier), Some(body)) = (identifier.as_str(), body.as_object()) else {
            return Err(layout());
        };
        if self.declared.iter().any(|p| p == identifier) {
            return Err(problem(
                &at,
                format!("its identifier {identifier} is also a parameter's name"),
            ));
        }
        let mut out = Map::new();
        for item in self.collection(&at, collection)? {
            let mut generated = Map::new();
            for (key, value) in body {
                let key = substitute_text(key, identifier, &item);
                generated.insert(key, substitute(value, identifier, &item));
            }
            for (key, value) in self.section(section, &generated, depth)? {
                if out.insert(key.clone(), value).is_some() {
                    return Err(problem(&at, format!("generates {key} twice")));
                }
            }
        }
        Ok(out)
    }

    /// A loop's collection as strings.
    fn collection(&self, at: &str, collection: &Value) -> Result<Vec<String>, TemplateError> {
        let resolved = find_in_map(collection.clone(), &self.mappings, self.parameters)?;
        let items = match &resolved {
            Value::Array(items) => items.clone(),
            Value::Object(map) if map.len() == 1 && map.contains_key("Ref") => {
                let name = map["Ref"].as_str().unwrap_or_default();
                let value = self.parameters.get(name).ok_or_else(|| {
                    problem(
                        at,
                        format!("its collection refers to an unknown parameter {name}"),
                    )
                })?;
                value
                    .split(',')
                    .map(|s| Value::String(s.trim().to_owned()))
                    .collect()
            }
            _ => return Err(problem(at, "its collection must be a list of strings")),
        };
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(problem(at, "its collection must be a list of strings")),
            })
            .collect()
    }
}

/// `item` without its non-alphanumeric characters (what `&{Identifier}` stands for).
fn alphanumeric(item: &str) -> String {
    item.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// `text` with `${identifier}` and `&{identifier}` replaced by `item`.
fn substitute_text(text: &str, identifier: &str, item: &str) -> String {
    text.replace(&format!("${{{identifier}}}"), item)
        .replace(&format!("&{{{identifier}}}"), &alphanumeric(item))
}

/// `value` with the loop's identifier replaced by `item`: `{"Ref": Identifier}` becomes the
/// item, and `${Identifier}` and `&{Identifier}` are replaced in every string, keys included (as
/// CloudFormation does: an `Fn::Sub` string, a `Ref`'s target, a nested loop's key alike).
fn substitute(value: &Value, identifier: &str, item: &str) -> Value {
    match value {
        Value::String(text) => Value::String(substitute_text(text, identifier, item)),
        Value::Object(map)
            if map.len() == 1 && map.get("Ref") == Some(&Value::from(identifier)) =>
        {
            Value::String(item.to_owned())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    (
                        substitute_text(key, identifier, item),
                        substitute(value, identifier, item),
                    )
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute(v, identifier, item))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `value` with every `Fn::Sub` that has nothing left to substitute (a loop wrote
/// `!Sub "${Name}Queue"` to name a generated resource in a `Ref` or an `Fn::GetAtt`, or to put
/// its name in a text) made the plain string it stands for.
fn literal_names(value: Value) -> Value {
    match value {
        Value::Object(map) if map.len() == 1 => match map.get("Fn::Sub") {
            Some(Value::String(text)) if !text.contains("${") => Value::String(text.clone()),
            _ => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, literal_names(v)))
                    .collect(),
            ),
        },
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, literal_names(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(literal_names).collect()),
        other => other,
    }
}

/// `value` with every `Fn::FindInMap` whose keys are known replaced by the mapping's value.
fn find_in_map(
    value: Value,
    mappings: &Value,
    parameters: &BTreeMap<String, String>,
) -> Result<Value, TemplateError> {
    Ok(match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("Fn::FindInMap") => {
            let arguments = map["Fn::FindInMap"].clone();
            let arguments = find_in_map(arguments, mappings, parameters)?;
            let known = |v: &Value| match v {
                Value::String(s) => Some(s.clone()),
                Value::Object(r) if r.len() == 1 => r["Ref"]
                    .as_str()
                    .and_then(|name| parameters.get(name).cloned()),
                _ => None,
            };
            let parts = arguments.as_array().cloned().unwrap_or_default();
            let keys: Option<Vec<String>> = parts.iter().take(3).map(known).collect();
            match keys {
                Some(keys) if keys.len() == 3 => {
                    let found = &mappings[&keys[0]][&keys[1]][&keys[2]];
                    let default = parts.get(3).map(|d| d["DefaultValue"].clone());
                    match (found, default) {
                        (Value::Null, Some(default)) if !default.is_null() => default,
                        (Value::Null, _) => {
                            return Err(TemplateError::Unresolved(format!(
                                "Fn::FindInMap [{}, {}, {}]: no such entry in Mappings",
                                keys[0], keys[1], keys[2]
                            )))
                        }
                        (found, _) => found.clone(),
                    }
                }
                _ => Value::Object(Map::from_iter([("Fn::FindInMap".to_owned(), arguments)])),
            }
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| Ok((k, find_in_map(v, mappings, parameters)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| find_in_map(v, mappings, parameters))
                .collect::<Result<_, _>>()?,
        ),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn expanded(template: Value) -> Result<Value, TemplateError> {
        expand(template, &BTreeMap::new())
    }

    /// AWS's first example: one topic per item, the key from `${Identifier}`, the name from a
    /// `Ref` to the identifier.
    #[test]
    fn a_loop_generates_one_resource_per_item() {
        let template = json!({
            "Resources": {
                "Fn::ForEach::Topics": ["TopicName", ["Success", "Failure", "Timeout", "Unknown"], {
                    "SnsTopic${TopicName}": {
                        "Type": "AWS::SNS::Topic",
                        "Properties": {"TopicName": {"Fn::Join": [".", [{"Ref": "TopicName"}, "fifo"]]}}
                    }
                }]
            }
        });
        let resources = expanded(template).unwrap()["Resources"].clone();
        let keys: Vec<&String> = resources.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "SnsTopicFailure",
                "SnsTopicSuccess",
                "SnsTopicTimeout",
                "SnsTopicUnknown"
            ]
        );
        assert_eq!(
            resources["SnsTopicTimeout"]["Properties"]["TopicName"],
            json!({"Fn::Join": [".", ["Timeout", "fifo"]]})
        );
    }

    /// `&{Identifier}` drops the characters a logical id cannot hold; `Fn::Sub` sees both forms.
    #[test]
    fn ampersand_placeholders_keep_only_alphanumerics_and_sub_strings_are_substituted() {
        let template = json!({
            "Resources": {
                "Fn::ForEach::Buckets": ["Name", ["a-b.c", "d"], {
                    "Bucket&{Name}": {
                        "Type": "AWS::S3::Bucket",
                        "Properties": {"BucketName": {"Fn::Sub": "${AWS::StackName}-${Name}-&{Name}"}}
                    }
                }]
            }
        });
        let resources = expanded(template).unwrap()["Resources"].clone();
        assert_eq!(
            resources["Bucketabc"]["Properties"]["BucketName"],
            json!({"Fn::Sub": "${AWS::StackName}-a-b.c-abc"})
        );
        assert!(resources.get("Bucketd").is_some());
    }

    /// Loops nest; the outer identifier is known inside the inner loop; outputs and conditions
    /// loop too.
    #[test]
    fn nested_loops_and_the_other_sections_expand() {
        let template = json!({
            "Conditions": {
                "Fn::ForEach::Is": ["Env", ["Prod", "Dev"], {
                    "Is${Env}": {"Fn::Equals": [{"Ref": "Env"}, "Prod"]}
                }]
            },
            "Resources": {
                "Fn::ForEach::Outer": ["Service", ["Api", "Worker"], {
                    "Fn::ForEach::Inner": ["Kind", ["Queue", "Dlq"], {
                        "${Service}${Kind}": {
                            "Type": "AWS::SQS::Queue",
                            "Properties": {"QueueName": {"Fn::Sub": "${Service}-${Kind}"}}
                        }
                    }]
                }]
            },
            "Outputs": {
                "Fn::ForEach::Urls": ["Service", ["Api", "Worker"], {
                    "${Service}QueueUrl": {"Value": {"Ref": "${Service}Queue"}}
                }]
            }
        });
        let result = expanded(template).unwrap();
        assert_eq!(result["Resources"].as_object().unwrap().len(), 4);
        assert_eq!(
            result["Resources"]["WorkerDlq"]["Properties"]["QueueName"],
            json!("Worker-Dlq")
        );
        assert_eq!(
            result["Conditions"]["IsDev"],
            json!({"Fn::Equals": ["Dev", "Prod"]})
        );
        assert_eq!(
            result["Outputs"]["ApiQueueUrl"]["Value"],
            json!({"Ref": "ApiQueue"})
        );
    }

    /// A collection may be a CommaDelimitedList parameter, or come from the mappings; the
    /// mappings' values are found once the identifier is known.
    #[test]
    fn collections_and_map_keys_come_from_parameters_and_mappings() {
        let template = json!({
            "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": "A,B"}},
            "Mappings": {
                "Settings": {"A": {"Timeout": 3, "Types": ["X", "Y"]}, "B": {"Timeout": 5, "Types": ["Z"]}},
                "Lists": {"All": {"Names": ["A", "B"]}}
            },
            "Resources": {
                "Fn::ForEach::Functions": ["Name", {"Ref": "Names"}, {
                    "${Name}Function": {
                        "Type": "AWS::Serverless::Function",
                        "Properties": {
                            "Timeout": {"Fn::FindInMap": ["Settings", {"Ref": "Name"}, "Timeout"]},
                            "Memory": {"Fn::FindInMap": ["Settings", {"Ref": "Name"}, "Memory", {"DefaultValue": 128}]}
                        }
                    }
                }],
                "Fn::ForEach::Filters": ["Name", {"Fn::FindInMap": ["Lists", "All", "Names"]}, {
                    "${Name}Filter": {"Type": "X", "Properties": {"Types": {"Fn::FindInMap": ["Settings", {"Ref": "Name"}, "Types"]}}}
                }]
            }
        });
        let mut parameters = BTreeMap::new();
        parameters.insert("Names".to_owned(), "A,B".to_owned());
        let resources = expand(template, &parameters).unwrap()["Resources"].clone();
        assert_eq!(resources["BFunction"]["Properties"]["Timeout"], 5);
        assert_eq!(resources["AFunction"]["Properties"]["Memory"], 128);
        assert_eq!(
            resources["AFilter"]["Properties"]["Types"],
            json!(["X", "Y"])
        );
    }

    /// A loop names the resources it generates through `Fn::Sub` in `Ref` and `Fn::GetAtt`;
    /// once substituted they are plain names.
    #[test]
    fn refs_and_getatts_to_generated_names_become_plain() {
        let template = json!({
            "Resources": {
                "Fn::ForEach::Q": ["N", ["A"], {
                    "${N}Dlq": {"Type": "AWS::SQS::Queue"},
                    "${N}Queue": {"Type": "AWS::SQS::Queue", "Properties": {
                        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [{"Fn::Sub": "${N}Dlq"}, "Arn"]}},
                        "Tags": [{"Key": "q", "Value": {"Ref": {"Fn::Sub": "${N}Dlq"}}}]
                    }}
                }]
            }
        });
        let queue = expanded(template).unwrap()["Resources"]["AQueue"]["Properties"].clone();
        assert_eq!(
            queue["RedrivePolicy"]["deadLetterTargetArn"],
            json!({"Fn::GetAtt": ["ADlq", "Arn"]})
        );
        assert_eq!(queue["Tags"][0]["Value"], json!({"Ref": "ADlq"}));
    }

    #[test]
    fn a_duplicate_key_a_parameter_named_identifier_and_a_bad_layout_are_errors() {
        let duplicate = json!({
            "Resources": {
                "QueueA": {"Type": "AWS::SQS::Queue"},
                "Fn::ForEach::Queues": ["N", ["A"], {"Queue${N}": {"Type": "AWS::SQS::Queue"}}]
            }
        });
        assert!(expanded(duplicate)
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let shadowing = json!({
            "Parameters": {"N": {"Type": "String"}},
            "Resources": {"Fn::ForEach::Q": ["N", ["A"], {"Q${N}": {"Type": "AWS::SQS::Queue"}}]}
        });
        assert!(expanded(shadowing)
            .unwrap_err()
            .to_string()
            .contains("parameter"));
        let layout = json!({"Resources": {"Fn::ForEach::Q": ["N", ["A"]]}});
        assert!(expanded(layout)
            .unwrap_err()
            .to_string()
            .contains("must be [Identifier, Collection"));
        let missing = json!({
            "Mappings": {"M": {"A": {"x": 1}}},
            "Resources": {"R": {"Type": "T", "Properties": {"P": {"Fn::FindInMap": ["M", "B", "x"]}}}}
        });
        assert!(expanded(missing)
            .unwrap_err()
            .to_string()
            .contains("no such entry"));
    }

    #[test]
    fn loops_nest_at_most_five_deep() {
        let mut body = json!({"R${L5}": {"Type": "T"}});
        for level in (0..6).rev() {
            body = json!({ format!("Fn::ForEach::L{level}"): [format!("L{level}"), ["x"], body] });
        }
        let template = json!({"Resources": body});
        assert!(expanded(template)
            .unwrap_err()
            .to_string()
            .contains("deeper"));
    }
}
