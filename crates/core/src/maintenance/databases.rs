//! `collect.maintenance_databases`: a comma-separated list of database names. Pure.

/// The names in the setting: trimmed, without empties or repeats, in order. A name with a
/// comma in it cannot be listed.
pub fn parse(setting: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in setting.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn lists_are_trimmed_and_deduplicated() {
        assert_eq!(parse(""), Vec::<String>::new());
        assert_eq!(parse(" , ,"), Vec::<String>::new());
        assert_eq!(
            parse("app, reports ,app,Mixed Case"),
            vec!["app", "reports", "Mixed Case"]
        );
    }
}
