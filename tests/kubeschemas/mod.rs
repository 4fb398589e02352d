//! Strict JSON schemas for kubeconform, made here instead of downloaded.
//!
//! kubeconform looks schemas up by group, version and kind. Its default source is a
//! public repository this project cannot reach, so the tests write their own, in the
//! layout `<group>/<version>/<kind>.json` (the core group's `v1` is `v1/v1/`):
//!
//! - built-in kinds from the OpenAPI v2 document of the real API server the tests run
//!   (`/openapi/v2`): the kind's definition plus every definition it refers to, so each
//!   file stands alone;
//! - custom resources from their CRD's `openAPIV3Schema`, with `metadata` checked against
//!   the server's `ObjectMeta`.
//!
//! "Strict" means what kubeconform's own strict schemas mean: every object that lists its
//! properties rejects any other (`additionalProperties: false`), so a misspelt or misplaced
//! field fails instead of being ignored.

// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// Definition name prefix of the API server's own types; custom resources installed in the
/// server also appear in its OpenAPI document, under other names, and are left out.
const BUILT_IN_PREFIX: &str = "io.k8s.";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// The `-schema-location` template for a directory written by this module.
pub fn location_template(dir: &Path) -> String {
    format!(
        "{}/{{{{ .Group }}}}/{{{{ .ResourceAPIVersion }}}}/{{{{ .ResourceKind }}}}.json",
        dir.display()
    )
}

/// Where the schema of `apiVersion`/`kind` lives below a schema directory, as kubeconform
/// computes it from [`location_template`].
pub fn relative_path(api_version: &str, kind: &str) -> PathBuf {
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => (api_version, api_version),
    };
    Path::new(group)
        .join(version)
        .join(format!("{}.json", kind.to_lowercase()))
}

/// The API server's OpenAPI v2 definitions, indexed by group/version/kind.
pub struct OpenApi {
    definitions: Map<String, Value>,
    by_kind: BTreeMap<(String, String, String), String>,
}

impl OpenApi {
    /// Indexes an OpenAPI v2 document (the body of `GET /openapi/v2`).
    pub fn new(document: Value) -> Result<OpenApi, String> {
        let Some(Value::Object(definitions)) = document.get("definitions").cloned() else {
            return Err("the OpenAPI document has no definitions".into());
        };
        let mut by_kind = BTreeMap::new();
        for (name, definition) in &definitions {
            if !name.starts_with(BUILT_IN_PREFIX) {
                continue;
            }
            let gvks = definition
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for gvk in gvks {
                let field = |key: &str| gvk.get(key).and_then(Value::as_str).unwrap_or_default();
                by_kind.insert(
                    (
                        field("group").to_owned(),
                        field("version").to_owned(),
                        field("kind").to_owned(),
                    ),
                    name.clone(),
                );
            }
        }
        Ok(OpenApi {
            definitions,
            by_kind,
        })
    }

    /// The standalone strict schema of a built-in kind, if the server serves it.
    pub fn kind_schema(&self, api_version: &str, kind: &str) -> Option<Value> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let name = self
            .by_kind
            .get(&(group.to_owned(), version.to_owned(), kind.to_owned()))?;
        let Value::Object(mut root) = self.strict_definition(name) else {
            return None;
        };
        root.insert("definitions".into(), self.reachable_from(name));
        Some(Value::Object(root))
    }

    /// Every definition that `name` refers to, directly or not, made strict, for a
    /// `definitions` section (local `#/definitions/...` refs then resolve within the file).
    fn reachable_from(&self, name: &str) -> Value {
        let mut seen = BTreeSet::new();
        let mut todo = vec![name.to_owned()];
        while let Some(next) = todo.pop() {
            if !seen.insert(next.clone()) {
                continue;
            }
            if let Some(definition) = self.definitions.get(&next) {
                collect_refs(definition, &mut todo);
            }
        }
        Value::Object(
            seen.into_iter()
                .map(|name| {
                    let definition = self.strict_definition(&name);
                    (name, definition)
                })
                .collect(),
        )
    }

    fn strict_definition(&self, name: &str) -> Value {
        if name == QUANTITY {
            // A quantity is a string in the API, but `cpu: 1` is as valid as `cpu: "1"`.
            return json!({"oneOf": [{"type": "string"}, {"type": "number"}]});
        }
        let mut definition = self.definitions.get(name).cloned().unwrap_or(json!({}));
        make_strict(&mut definition);
        definition
    }
}

/// The standalone strict schema of every kind and served version a CRD defines, as
/// (apiVersion, kind, schema); `metadata` refers to the server's `ObjectMeta`.
pub fn crd_schemas(crd: &Value, openapi: &OpenApi) -> Result<Vec<(String, String, Value)>, String> {
    let spec = crd.get("spec").ok_or("a CRD without spec")?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or("a CRD without spec.group")?;
    let kind = spec
        .pointer("/names/kind")
        .and_then(Value::as_str)
        .ok_or("a CRD without spec.names.kind")?;
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("a CRD without spec.versions")?;
    let mut schemas = Vec::new();
    for version in versions {
        if version.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let name = version
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a CRD version without name")?;
        let mut schema = version
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .ok_or_else(|| format!("{kind} {name} has no openAPIV3Schema"))?;
        make_strict(&mut schema);
        let api_version = format!("{group}/{name}");
        let properties = schema
            .as_object_mut()
            .ok_or("openAPIV3Schema is not an object")?
            .entry("properties")
            .or_insert_with(|| json!({}));
        properties["apiVersion"] = json!({"type": "string", "enum": [api_version]});
        properties["kind"] = json!({"type": "string", "enum": [kind]});
        properties["metadata"] = json!({"$ref": format!("#/definitions/{OBJECT_META}")});
        schema["definitions"] = openapi.reachable_from(OBJECT_META);
        schemas.push((api_version, kind.to_owned(), schema));
    }
    Ok(schemas)
}

/// Writes `schema` where kubeconform looks for `apiVersion`/`kind` below `dir`; written to
/// a temporary name first so a concurrent reader never sees half a file.
pub fn write(dir: &Path, api_version: &str, kind: &str, schema: &Value) -> Result<(), String> {
    let path = dir.join(relative_path(api_version, kind));
    let parent = path.parent().expect("a schema path has a parent");
    std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let text = serde_json::to_vec(schema).map_err(|e| e.to_string())?;
    std::fs::write(&temporary, text)
        .map_err(|e| format!("writing {}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, &path).map_err(|e| format!("renaming to {}: {e}", path.display()))
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix("#/definitions/") {
                            out.push(name.to_owned());
                        }
                    }
                    _ => collect_refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// Rewrites one schema (OpenAPI v2 definition or CRD structural schema) in place:
/// closed objects, int-or-string as a real union, `nullable` as a null type. Walks only
/// the places that hold schemas, never property names or values such as `enum`.
pub fn make_strict(schema: &mut Value) {
    let Value::Object(map) = schema else { return };

    let int_or_string = map.get("format").and_then(Value::as_str) == Some("int-or-string")
        || map
            .get("x-kubernetes-int-or-string")
            .and_then(Value::as_bool)
            == Some(true);
    if int_or_string {
        let mut union = Map::new();
        if let Some(description) = map.get("description") {
            union.insert("description".into(), description.clone());
        }
        union.insert(
            "oneOf".into(),
            json!([{"type": "string"}, {"type": "integer"}]),
        );
        *map = union;
        return;
    }

    if map.get("nullable").and_then(Value::as_bool) == Some(true)
        && let Some(Value::String(single)) = map.get("type").cloned()
    {
        map.insert("type".into(), json!([single, "null"]));
    }

    let open = map
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    if map.contains_key("properties") && !map.contains_key("additionalProperties") && !open {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }

    for key in ["properties", "patternProperties", "definitions"] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            children.values_mut().for_each(make_strict);
        }
    }
    for key in ["additionalProperties", "not"] {
        if let Some(child @ Value::Object(_)) = map.get_mut(key) {
            make_strict(child);
        }
    }
    match map.get_mut("items") {
        Some(Value::Array(children)) => children.iter_mut().for_each(make_strict),
        Some(child) => make_strict(child),
        None => {}
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(children)) = map.get_mut(key) {
            children.iter_mut().for_each(make_strict);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names_are_not_mistaken_for_keywords() {
        // JSONSchemaProps has properties named like schema keywords.
        let mut schema = json!({
            "type": "object",
            "properties": {
                "format": {"type": "string"},
                "properties": {"type": "object", "additionalProperties": {"$ref": "#/x"}},
                "port": {"type": "string", "format": "int-or-string"},
            }
        });
        make_strict(&mut schema);
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["properties"]["format"], json!({"type": "string"}));
        assert!(schema["properties"].get("additionalProperties").is_none());
        assert_eq!(
            schema["properties"]["port"]["oneOf"],
            json!([{"type": "string"}, {"type": "integer"}])
        );
    }

    #[test]
    fn open_objects_stay_open() {
        let mut schema = json!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"a": {"type": "string", "nullable": true}},
        });
        make_strict(&mut schema);
        assert!(schema.get("additionalProperties").is_none());
        assert_eq!(schema["properties"]["a"]["type"], json!(["string", "null"]));
    }

    #[test]
    fn core_group_paths_repeat_the_version() {
        assert_eq!(
            relative_path("v1", "Service"),
            Path::new("v1/v1/service.json")
        );
        assert_eq!(
            relative_path("apps/v1", "Deployment"),
            Path::new("apps/v1/deployment.json")
        );
    }
}
