//! Reports: figures with their units, printed as text or JSON.

use serde_json::{Map, Value};

/// A report: a title and named figures, in order.
pub struct Report {
    pub title: String,
    figures: Vec<(String, Value, &'static str)>,
}

impl Report {
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), figures: Vec::new() }
    }

    pub fn add(&mut self, name: &str, value: impl Into<Value>, unit: &'static str) -> &mut Self {
        self.figures.push((name.to_owned(), value.into(), unit));
        self
    }

    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("mode".into(), Value::String(self.title.clone()));
        for (name, value, _) in &self.figures {
            map.insert(name.clone(), value.clone());
        }
        Value::Object(map)
    }

    pub fn to_text(&self) -> String {
        let mut text = format!("{}\n", self.title);
        for (name, value, unit) in &self.figures {
            let shown = match value {
                Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or_default()),
                other => other.to_string(),
            };
            text.push_str(&format!("  {name:<28} {shown} {unit}\n"));
        }
        text
    }
}

/// Milliseconds of a duration, with microsecond precision.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
