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

/// The names a release's SQL gives the objects that the library calls or generated SQL uses.
/// A database keeps the release it was created with until `ALTER EXTENSION pg_collect
/// UPDATE`, while the library is already the new one: until then it must call that
/// release's objects by their names (the upgrade test runs every release's objects on this
/// library before updating them). Renames come only with a new release (README, Renames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Vocabulary {
    /// Releases 0.1.0 and 0.2.0.
    Before0_3,
    /// 0.3.0 on: one name for each idea.
    #[default]
    Current,
}

impl Vocabulary {
    /// The type of lumps: collections' bases and archives' lumps store it.
    pub fn lump_type(self) -> &'static str {
        match self {
            Vocabulary::Before0_3 => "collect.collection",
            Vocabulary::Current => "collect.lump",
        }
    }

    /// The function merging two sketches of type `sketch` (`hll`, `quantiles`, `topk`).
    pub fn sketch_merge(self, sketch: &str) -> String {
        match self {
            Vocabulary::Before0_3 => format!("collect.{sketch}_union"),
            Vocabulary::Current => "collect.merge".into(),
        }
    }

    /// What a rollup needs to roll up a batch of NDJSON events without rows.
    pub fn rollup_ndjson_plan(self) -> &'static str {
        match self {
            Vocabulary::Before0_3 => "collect._rollup_lump_plan",
            Vocabulary::Current => "collect._rollup_ndjson_plan",
        }
    }
}

#[cfg(test)]
mod vocabulary_tests {
    use super::Vocabulary;

    #[test]
    fn each_release_has_its_names() {
        assert_eq!(Vocabulary::default(), Vocabulary::Current);
        assert_eq!(Vocabulary::Current.sketch_merge("hll"), "collect.merge");
        assert_eq!(
            Vocabulary::Before0_3.sketch_merge("topk"),
            "collect.topk_union"
        );
        assert_eq!(Vocabulary::Before0_3.lump_type(), "collect.collection");
        assert_eq!(Vocabulary::Current.lump_type(), "collect.lump");
        assert_eq!(
            Vocabulary::Before0_3.rollup_ndjson_plan(),
            "collect._rollup_lump_plan"
        );
    }
}
