//! Human output: a table of a list answer's `data`, or one object's fields.

use serde_json::Value;

/// Columns of a list, each a field path (`a.b` reads nested objects).
pub(crate) struct Table {
    columns: Vec<String>,
}

impl Table {
    pub(crate) fn new(columns: &[&str]) -> Self {
        Self {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    /// The rows of `answer["data"]`, aligned, then the next page's cursor.
    pub(crate) fn render(&self, answer: &Value) -> String {
        let rows: Vec<Vec<String>> = answer["data"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|it| self.columns.iter().map(|c| cell(lookup(it, c))).collect())
                    .collect()
            })
            .unwrap_or_default();
        let header: Vec<String> = self.columns.iter().map(|c| c.to_uppercase()).collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(rows.iter()) {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        if let Some(next) = answer["next_cursor"].as_str() {
            out.push_str(&format!("(more: --cursor {next})\n"));
        }
        out
    }
}

/// `key  value` lines for the given fields of one object (absent ones skipped).
pub(crate) fn fields(obj: &Value, keys: &[&str]) -> String {
    let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    keys.iter()
        .filter_map(|k| {
            let v = lookup(obj, k);
            (!v.is_null()).then(|| format!("{k:<width$}  {}\n", cell(v)))
        })
        .collect()
}

fn lookup<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.replace(['\n', '\r', '\t'], " "),
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}
