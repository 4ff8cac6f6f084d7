//! Names in the SQL pg_collect generates: always quoted, always qualified. Pure.

/// An identifier, always quoted: correct for every name, keywords included.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.name`, both quoted.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A relation or function by schema and name, as the SQL layer hands it to a generator.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    /// The name quoted and qualified.
    pub fn sql(&self) -> String {
        qualified(&self.schema, &self.name)
    }
}

/// A string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted() {
        assert_eq!(ident("select"), "\"select\"");
        assert_eq!(ident("Odd \"Files\""), "\"Odd \"\"Files\"\"\"");
        assert_eq!(qualified("a b", "c"), "\"a b\".\"c\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
