//! The fleet-index query language, as far as the simulator answers it: a parser from the
//! query string of SearchIndex to a [`Query`], and its evaluation on one thing's indexed
//! fields ([`Doc`]).
//!
//! The subset (AWS IoT developer guide, "Query syntax"):
//!
//! - terms `FIELD:VALUE` on the fields `thingName`, `thingTypeName`, `thingGroupNames`,
//!   `attributes.NAME` and `connectivity.connected`; a value is a word or a `"quoted
//!   phrase"`; in a word `*` matches any run of characters and `?` one character; a value
//!   of `*` alone matches any thing that has the field; a bare `*` matches every thing;
//! - `AND`, `OR`, `NOT` (upper case), `-` before a clause for NOT, parentheses; clauses
//!   side by side are joined with AND (the default operator); AND binds tighter than OR;
//! - search is case-insensitive, field names are case-sensitive;
//! - at most [`MAX_TERMS`] terms; a leading wildcard (`*abc`) in one term at most, and then
//!   a query of at most [`MAX_LEADING_WILDCARD_QUERY_LEN`] characters;
//! - the characters `` ` @ # % \ / ' ; , `` are refused, as the guide lists them unsupported.
//!
//! Everything else AWS answers (terms without a field, other fields such as `shadow.*` or
//! `connectivity.timestamp`, ranges, comparisons, field grouping, `&&`, `+`) is refused
//! here with a message that says the simulator does not answer it: a test that needs it
//! learns so at once instead of getting a silently wrong set.

use std::collections::BTreeMap;

/// The guide's maximum number of terms in one query.
pub const MAX_TERMS: usize = 7;

/// The longest query that may hold a leading wildcard.
pub const MAX_LEADING_WILDCARD_QUERY_LEN: usize = 100;

/// The characters the guide lists as unsupported in queries.
const UNSUPPORTED_CHARS: &[char] = &['`', '@', '#', '%', '\\', '/', '\'', ';', ','];

/// The fields of the subset.
const FIELDS: &str =
    "thingName, thingTypeName, thingGroupNames, attributes.NAME and connectivity.connected";

/// A field of the thing index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// `thingName`.
    ThingName,
    /// `thingTypeName` (absent for a thing without a type).
    ThingTypeName,
    /// `thingGroupNames` (one value per group).
    ThingGroupNames,
    /// `attributes.NAME`.
    Attribute(String),
    /// `connectivity.connected` (absent unless connectivity is indexed).
    Connected,
}

/// What a term's value matches, lower case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `*`: the field is present.
    Present,
    /// A word without wildcards, or a quoted phrase.
    Exact(String),
    /// A word with `*` or `?`.
    Wildcard(String),
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// A bare `*`: every thing.
    Everything,
    /// `FIELD:VALUE`.
    Term(Field, Pattern),
    /// `NOT q` or `-q`.
    Not(Box<Query>),
    /// Every clause.
    And(Vec<Query>),
    /// Any clause.
    Or(Vec<Query>),
}

/// One thing's indexed fields.
#[derive(Clone, Debug)]
pub struct Doc<'a> {
    /// `thingName`.
    pub name: &'a str,
    /// `thingTypeName`.
    pub thing_type: Option<&'a str>,
    /// `thingGroupNames`.
    pub groups: Vec<&'a str>,
    /// `attributes`.
    pub attributes: &'a BTreeMap<String, String>,
    /// `connectivity.connected`, when connectivity is indexed.
    pub connected: Option<bool>,
}

/// A lexical token.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    /// A bare `*`.
    Star,
    /// `FIELD:VALUE`: the field, the value's text and whether it was quoted.
    Term(String, String, bool),
}

/// Parses `text`; the error is the message of an InvalidQueryException.
pub fn parse(text: &str) -> Result<Query, String> {
    if text.trim().is_empty() {
        return Err("The query string is empty".into());
    }
    if let Some(c) = text.chars().find(|c| UNSUPPORTED_CHARS.contains(c)) {
        return Err(format!("The character '{c}' is not supported in queries"));
    }
    let tokens = lex(text)?;
    let terms = tokens
        .iter()
        .filter(|t| matches!(t, Token::Term(..) | Token::Star))
        .count();
    if terms > MAX_TERMS {
        return Err(format!(
            "The query has {terms} terms; at most {MAX_TERMS} are allowed"
        ));
    }
    let leading = tokens
        .iter()
        .filter(|t| match t {
            Token::Term(_, v, false) => v.len() > 1 && v.starts_with(['*', '?']),
            _ => false,
        })
        .count();
    if leading > 1 {
        return Err("A leading wildcard is allowed in one term of a query only".into());
    }
    if leading == 1 && text.chars().count() > MAX_LEADING_WILDCARD_QUERY_LEN {
        return Err(format!(
            "A query with a leading wildcard can be at most {MAX_LEADING_WILDCARD_QUERY_LEN} characters long"
        ));
    }
    let mut parser = Parser { tokens, at: 0 };
    let query = parser.or()?;
    match parser.peek() {
        None => Ok(query),
        Some(Token::Close) => Err("Unbalanced parentheses: a ')' without its '('".into()),
        Some(t) => Err(format!("Unexpected {t:?} in the query")),
    }
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => {
                tokens.push(Token::Open);
                i += 1;
                continue;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
                continue;
            }
            // `-clause` excludes, like NOT.
            '-' if chars.get(i + 1).is_some_and(|n| !n.is_whitespace()) => {
                tokens.push(Token::Not);
                i += 1;
                continue;
            }
            '"' => return Err(not_simulated("a phrase without a field")),
            _ => {}
        }
        // A word up to whitespace, a parenthesis or the first ':'.
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !"():".contains(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        if word.starts_with('+') {
            return Err(not_simulated("the + operator"));
        }
        if chars.get(i) != Some(&':') {
            tokens.push(match word.as_str() {
                "AND" => Token::And,
                "OR" => Token::Or,
                "NOT" => Token::Not,
                "*" => Token::Star,
                "&&" | "||" | "!" => return Err(not_simulated(&format!("the operator {word}"))),
                w if w.contains(['<', '>', '=']) => {
                    return Err(not_simulated(&format!("the comparison {w}")))
                }
                w => return Err(not_simulated(&format!("the term {w:?} without a field"))),
            });
            continue;
        }
        if word.is_empty() {
            return Err("A ':' without a field before it".into());
        }
        i += 1; // the ':'
        let (value, quoted) = match chars.get(i) {
            Some('"') => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '"')
                    .ok_or("A quoted phrase without its closing '\"'")?;
                let phrase: String = chars[i + 1..i + 1 + close].iter().collect();
                i += close + 2;
                (phrase, true)
            }
            Some('(') => return Err(not_simulated("field grouping (FIELD:(...))")),
            Some('[' | '{') => return Err(not_simulated("range searches")),
            Some(c) if c.is_whitespace() => return Err(format!("The field {word} has no value")),
            None => return Err(format!("The field {word} has no value")),
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && chars[i] != ')' {
                    i += 1;
                }
                let value: String = chars[start..i].iter().collect();
                if value.starts_with(['<', '>']) {
                    return Err(not_simulated(&format!("the comparison {word}:{value}")));
                }
                if value.contains([':', '(', '"', '[', ']', '{', '}', '^', '~']) {
                    return Err(format!(
                        "The value {value:?} has special characters: quote it (\"...\")"
                    ));
                }
                (value, false)
            }
        };
        if value.is_empty() {
            return Err(format!("The field {word} has an empty value"));
        }
        tokens.push(Token::Term(word, value, quoted));
    }
    Ok(tokens)
}

fn not_simulated(what: &str) -> String {
    format!("iot-sim does not simulate {what} in fleet-index queries (it answers FIELD:VALUE terms on {FIELDS})")
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Query, String> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.next();
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Query::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Query, String> {
        let mut parts = vec![self.unary()?];
        loop {
            match self.peek() {
                None | Some(Token::Or | Token::Close) => break,
                Some(Token::And) => {
                    self.next();
                    parts.push(self.unary()?);
                }
                // Clauses side by side: the default operator, AND.
                Some(_) => parts.push(self.unary()?),
            }
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Query::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Query, String> {
        if self.peek() == Some(&Token::Not) {
            self.next();
            return Ok(Query::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Query, String> {
        match self.next() {
            Some(Token::Open) => {
                let q = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(q),
                    _ => Err("Unbalanced parentheses: a '(' without its ')'".into()),
                }
            }
            Some(Token::Star) => Ok(Query::Everything),
            Some(Token::Term(field, value, quoted)) => term(&field, &value, quoted),
            Some(Token::And) => Err("AND without a clause before it".into()),
            Some(Token::Or) => Err("OR without a clause before it".into()),
            Some(Token::Close) => {
                Err("Unbalanced parentheses: an empty '()' or a ')' too many".into())
            }
            Some(Token::Not) | None => Err("The query ends where a clause is expected".into()),
        }
    }
}

fn term(field: &str, value: &str, quoted: bool) -> Result<Query, String> {
    let field = match field {
        "thingName" => Field::ThingName,
        "thingTypeName" => Field::ThingTypeName,
        "thingGroupNames" => Field::ThingGroupNames,
        "connectivity.connected" => Field::Connected,
        f => match f.strip_prefix("attributes.") {
            Some(name) if !name.is_empty() => Field::Attribute(name.to_string()),
            _ => return Err(not_simulated(&format!("the field {f}"))),
        },
    };
    let value = value.to_lowercase();
    let pattern = if quoted {
        Pattern::Exact(value)
    } else if value == "*" {
        Pattern::Present
    } else if value.contains(['*', '?']) {
        Pattern::Wildcard(value)
    } else {
        Pattern::Exact(value)
    };
    if field == Field::Connected {
        let boolean = matches!(&pattern, Pattern::Present)
            || matches!(&pattern, Pattern::Exact(v) if v == "true" || v == "false");
        if !boolean {
            return Err("connectivity.connected is a Boolean field: true, false or *".into());
        }
    }
    Ok(Query::Term(field, pattern))
}

impl Query {
    /// Whether the thing `doc` matches.
    pub fn matches(&self, doc: &Doc<'_>) -> bool {
        match self {
            Query::Everything => true,
            Query::Term(field, pattern) => values(doc, field)
                .iter()
                .any(|v| pattern.matches(&v.to_lowercase())),
            Query::Not(q) => !q.matches(doc),
            Query::And(qs) => qs.iter().all(|q| q.matches(doc)),
            Query::Or(qs) => qs.iter().any(|q| q.matches(doc)),
        }
    }
}

/// The values `doc` has for `field` (none: the field is absent).
fn values<'a>(doc: &Doc<'a>, field: &Field) -> Vec<&'a str> {
    match field {
        Field::ThingName => vec![doc.name],
        Field::ThingTypeName => doc.thing_type.into_iter().collect(),
        Field::ThingGroupNames => doc.groups.clone(),
        Field::Attribute(name) => doc
            .attributes
            .get(name)
            .map(String::as_str)
            .into_iter()
            .collect(),
        Field::Connected => match doc.connected {
            Some(true) => vec!["true"],
            Some(false) => vec!["false"],
            None => Vec::new(),
        },
    }
}

impl Pattern {
    /// Whether `value` (lower case) matches.
    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Present => true,
            Pattern::Exact(v) => v == value,
            Pattern::Wildcard(p) => wildcard(p.as_bytes(), value.as_bytes()),
        }
    }
}

/// Glob matching: `*` any run of bytes, `?` one character (names and values are ASCII).
fn wildcard(pattern: &[u8], value: &[u8]) -> bool {
    let (mut p, mut v) = (0, 0);
    // Where the last `*` was, and the value position it is trying to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, v));
                p += 1;
            }
            Some(b'?') => {
                p += 1;
                v += 1;
            }
            Some(c) if *c == value[v] => {
                p += 1;
                v += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    p = sp + 1;
                    v = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc<'a>(
        name: &'a str,
        thing_type: Option<&'a str>,
        groups: Vec<&'a str>,
        attributes: &'a BTreeMap<String, String>,
        connected: Option<bool>,
    ) -> Doc<'a> {
        Doc {
            name,
            thing_type,
            groups,
            attributes,
            connected,
        }
    }

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn matches(query: &str, d: &Doc<'_>) -> bool {
        parse(query)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .matches(d)
    }

    #[test]
    fn terms_match_their_field_case_insensitively() {
        let a = attrs(&[("fw", "2.1.0"), ("site", "Lyon")]);
        let d = doc(
            "Sensor-01",
            Some("sensor"),
            vec!["floor-1"],
            &a,
            Some(false),
        );
        for yes in [
            "thingName:sensor-01",
            "thingName:SENSOR-*",
            "thingName:sensor-0?",
            "thingName:*-01",
            "thingName:\"Sensor-01\"",
            "thingTypeName:sensor",
            "thingGroupNames:floor-1",
            "attributes.fw:2.*",
            "attributes.site:lyon",
            "attributes.site:*",
            "connectivity.connected:false",
            "connectivity.connected:*",
            "*",
        ] {
            assert!(matches(yes, &d), "{yes} should match");
        }
        for no in [
            "thingName:sensor-1",
            "thingName:sensor-0",
            "thingName:\"sensor-0*\"",
            "thingTypeName:gateway",
            "thingGroupNames:floor",
            "attributes.fw:3.*",
            "attributes.Site:lyon",
            "attributes.missing:*",
            "connectivity.connected:true",
        ] {
            assert!(!matches(no, &d), "{no} should not match");
        }
    }

    #[test]
    fn absent_fields_match_nothing_and_their_negation_everything() {
        let a = attrs(&[]);
        let d = doc("bare", None, vec![], &a, None);
        assert!(!matches("thingTypeName:*", &d));
        assert!(!matches("thingGroupNames:*", &d));
        assert!(!matches("connectivity.connected:false", &d));
        assert!(matches("NOT connectivity.connected:true", &d));
        assert!(matches("-thingTypeName:*", &d));
    }

    #[test]
    fn boolean_operators_group_and_default_to_and() {
        let a = attrs(&[("fw", "2")]);
        let d = doc("s1", Some("sensor"), vec!["g1", "g2"], &a, Some(true));
        assert!(matches("thingName:s1 thingTypeName:sensor", &d));
        assert!(!matches("thingName:s1 thingTypeName:gateway", &d));
        assert!(matches("thingName:x OR thingGroupNames:g2", &d));
        assert!(matches(
            "(thingName:x OR thingName:s*) AND NOT attributes.fw:1",
            &d
        ));
        assert!(!matches("thingName:s1 AND -thingGroupNames:g1", &d));
        // AND binds tighter than OR.
        assert!(matches("thingName:x AND thingName:y OR thingName:s1", &d));
        assert!(!matches(
            "thingName:x AND (thingName:y OR thingName:s1)",
            &d
        ));
        assert!(matches("NOT NOT thingName:s1", &d));
    }

    #[test]
    fn queries_outside_the_subset_are_refused_naming_what() {
        for (q, says) in [
            ("", "empty"),
            ("abc", "without a field"),
            ("\"a b\"", "phrase"),
            ("shadow.reported.x:1", "shadow.reported.x"),
            ("connectivity.timestamp:1", "connectivity.timestamp"),
            ("thingName:(a OR b)", "grouping"),
            ("attributes.x:[1 TO 5]", "range"),
            ("attributes.x>5", "comparison"),
            ("thingName:a && thingName:b", "&&"),
            ("+thingName:a", "+"),
            ("thingName:a/b", "'/'"),
            ("thingName:a,b", "','"),
            ("thingName:", "no value"),
            ("thingName: a", "no value"),
            (":a", "without a field"),
            ("thingName:a:b", "quote it"),
            ("(thingName:a", "Unbalanced"),
            ("thingName:a)", "Unbalanced"),
            ("thingName:a AND", "ends"),
            ("OR thingName:a", "OR"),
            ("thingName:\"a", "closing"),
            ("connectivity.connected:yes", "Boolean"),
            ("thingName:*a thingTypeName:*b", "leading wildcard"),
            ("attributes.x:", "no value"),
            ("attributes.:x", "attributes."),
        ] {
            let e = parse(q).expect_err(q);
            assert!(e.contains(says), "{q:?}: {e}");
        }
        let eight = (0..8)
            .map(|n| format!("thingName:t{n}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        assert!(parse(&eight).unwrap_err().contains("at most 7"));
        let seven = (0..7)
            .map(|n| format!("thingName:t{n}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        assert!(parse(&seven).is_ok());
        let long = format!("thingName:*a AND thingTypeName:{}", "x".repeat(100));
        assert!(parse(&long).unwrap_err().contains("100 characters"));
        assert!(parse(&format!(
            "thingName:a AND thingTypeName:{}",
            "x".repeat(100)
        ))
        .is_ok());
        assert!(parse("thingName:\"a:b\"").is_ok());
    }

    #[test]
    fn wildcards_cover_runs_and_single_characters() {
        assert!(wildcard(b"a*c", b"abbbc"));
        assert!(wildcard(b"a*c", b"ac"));
        assert!(!wildcard(b"a*c", b"abd"));
        assert!(wildcard(b"*b*", b"abc"));
        assert!(wildcard(b"a?c", b"abc"));
        assert!(!wildcard(b"a?c", b"ac"));
        assert!(wildcard(b"a**", b"a"));
        assert!(wildcard(b"*x*y", b"axbxy"));
        assert!(!wildcard(b"*x*y", b"axbx"));
    }
}
