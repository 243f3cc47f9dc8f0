//! The catalogue: two JSON documents (categories and prices) that admins replace whole.

/// Which catalogue document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CatalogueKind {
    Categories,
    Prices,
}

impl CatalogueKind {
    /// The document's name, as stored and as in the REST path.
    pub fn name(self) -> &'static str {
        match self {
            Self::Categories => "categories",
            Self::Prices => "prices",
        }
    }
}

/// Replace a catalogue document with this JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueWrite {
    pub kind: CatalogueKind,
    pub body: String,
}
