//! What a statement prints, shaped as Livy's REPL shapes it for each interpreter
//! (apache/incubator-livy, `repl/`):
//!
//! - **pyspark** (`fake_shell.py`): output is stdout with trailing whitespace
//!   stripped, as `text/plain`; an exception is `ename` (the class name),
//!   `evalue` (its message) and `traceback` (Python's lines, the statement's own
//!   `<stdin>` frame left out).
//! - **spark**, Scala (`AbstractSparkInterpreter`): stdout as the REPL writes it,
//!   `res0: Int = 2\n`, numbered per session; an error is `ename` `"Error"`, the
//!   first line of the REPL's message as `evalue`, the rest as `traceback`.
//! - **sql** (`SQLInterpreter`): `application/json` with Spark's `schema` (a
//!   `struct` of fields) and `data` rows; an error is `"Error"` with Spark's
//!   message and a stack trace.
//!
//! Nothing is really run. What is understood: integer arithmetic, printing a
//! literal, `spark`/`sc`, raising or throwing, dividing by zero; in SQL,
//! `SELECT` of literals (with aliases), `SHOW DATABASES`/`TABLES`/`TABLE
//! EXTENDED`, and statements that return no rows (`CREATE`, `DROP`, `INSERT`,
//! `USE`, …); a query of any table is "not found" (there are none). sparkmagic's
//! `%%sql` (a query wrapped in `toJSON` and printed row by row) prints the rows of
//! the query it wraps. Other code succeeds with empty output.

use serde_json::{json, Map, Value};

/// A statement's result: the `data` of a successful output, or an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok(Value),
    Error {
        ename: String,
        evalue: String,
        traceback: Vec<String>,
    },
}

impl Outcome {
    fn text(text: impl Into<String>) -> Self {
        Self::Ok(json!({ "text/plain": text.into() }))
    }

    fn error(ename: &str, evalue: impl Into<String>, traceback: Vec<String>) -> Self {
        Self::Error {
            ename: ename.into(),
            evalue: evalue.into(),
            traceback,
        }
    }

    /// The statement's `output`, as Livy's views show it.
    pub fn output(&self, execution_count: u64) -> Value {
        match self {
            Outcome::Ok(data) => json!({
                "status": "ok",
                "execution_count": execution_count,
                "data": data,
            }),
            Outcome::Error {
                ename,
                evalue,
                traceback,
            } => json!({
                "status": "error",
                "execution_count": execution_count,
                "ename": ename,
                "evalue": evalue,
                "traceback": traceback,
            }),
        }
    }
}

/// A session's interpreters: what they remember between statements.
#[derive(Debug, Default)]
pub struct Interpreters {
    /// The Scala REPL's next `res<N>`.
    scala_results: u64,
}

impl Interpreters {
    /// Runs `code` with the interpreter of `kind` (`pyspark`, `spark`, `sql`;
    /// anything else runs as pyspark).
    pub fn run(&mut self, kind: &str, code: &str) -> Outcome {
        match kind {
            "spark" => self.scala(code.trim()),
            "sql" => sql(code.trim()),
            _ => pyspark(code.trim()),
        }
    }

    fn scala(&mut self, code: &str) -> Outcome {
        let mut result = |ty: &str, value: &str| {
            let n = self.scala_results;
            self.scala_results += 1;
            Outcome::text(format!("res{n}: {ty} = {value}\n"))
        };
        if let Some(query) = wrapped_query(code) {
            return printed_rows(&query, "\n");
        }
        if let Some(rest) = code.strip_prefix("throw new ") {
            let (class, message) = call_with_literal(rest).unwrap_or((rest.trim(), ""));
            let class = qualified_java_class(class);
            return scala_runtime_error(&format!("{class}: {message}"));
        }
        for (print, newline) in [("println(", "\n"), ("print(", "")] {
            if let Some(inner) = code.strip_prefix(print).and_then(|r| r.strip_suffix(')')) {
                let inner = inner.trim();
                if let Some(text) = string_literal(inner, &['"']) {
                    return Outcome::text(format!("{text}{newline}"));
                }
                if let Some(Ok(value)) = Arith::new(inner).parse() {
                    return Outcome::text(format!("{value}{newline}"));
                }
            }
        }
        match code {
            "spark" => {
                return result(
                    "org.apache.spark.sql.SparkSession",
                    "org.apache.spark.sql.SparkSession@5e4a7c1e",
                )
            }
            "sc" => {
                return result(
                    "org.apache.spark.SparkContext",
                    "org.apache.spark.SparkContext@3f5a5c7b",
                )
            }
            "sc.version" | "spark.version" => return result("String", SPARK_VERSION),
            _ => {}
        }
        if let Some(rest) = code.strip_prefix("val ") {
            if let Some((name, value)) = rest.split_once('=') {
                let name = name.trim();
                if let Some(Ok(value)) = Arith::new(value).parse() {
                    return Outcome::text(format!("{name}: Int = {value}\n"));
                }
                if let Some(text) = string_literal(value.trim(), &['"']) {
                    return Outcome::text(format!("{name}: String = {text}\n"));
                }
            }
        }
        if let Some(text) = string_literal(code, &['"']) {
            return result("String", text);
        }
        match Arith::new(code).parse() {
            Some(Ok(value)) => result("Int", &value.to_string()),
            Some(Err(())) => scala_runtime_error("java.lang.ArithmeticException: / by zero"),
            None if is_identifier(code) => Outcome::error(
                "Error",
                format!("<console>:24: error: not found: value {code}"),
                vec![format!("       {code}"), "       ^".into()],
            ),
            None => Outcome::text(""),
        }
    }
}

/// The Spark version the simulated cluster runs.
const SPARK_VERSION: &str = "3.3.2";

/// A Scala runtime exception as the REPL prints it: the message, then the
/// elided frames.
fn scala_runtime_error(message: &str) -> Outcome {
    Outcome::error("Error", message, vec!["  ... 48 elided".into()])
}

/// `RuntimeException` is `java.lang.RuntimeException`, as the REPL names it.
fn qualified_java_class(class: &str) -> String {
    match class.contains('.') {
        true => class.to_owned(),
        false => format!("java.lang.{class}"),
    }
}

fn pyspark(code: &str) -> Outcome {
    if let Some(query) = wrapped_query(code) {
        return printed_rows(&query, "");
    }
    if let Some(rest) = code.strip_prefix("raise ") {
        let (class, message) = call_with_literal(rest).unwrap_or((rest.trim(), ""));
        return python_error(class, message);
    }
    match code {
        "spark" => {
            return Outcome::text("<pyspark.sql.session.SparkSession object at 0x7f3c2c1b1d30>")
        }
        "sc" => return Outcome::text("<SparkContext master=yarn appName=livy-session-0>"),
        "sc.version" | "spark.version" => return Outcome::text(format!("'{SPARK_VERSION}'")),
        _ => {}
    }
    if let Some(inner) = code
        .strip_prefix("print(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let inner = inner.trim();
        if let Some(text) = string_literal(inner, &['"', '\'']) {
            return Outcome::text(text);
        }
        if let Some(Ok(value)) = Arith::new(inner).parse() {
            return Outcome::text(value.to_string());
        }
    }
    match Arith::new(code).parse() {
        Some(Ok(value)) => Outcome::text(value.to_string()),
        Some(Err(())) => python_error("ZeroDivisionError", "division by zero"),
        None if is_identifier(code) && !PYTHON_NAMES.contains(&code) => {
            python_error("NameError", &format!("name '{code}' is not defined"))
        }
        None => Outcome::text(""),
    }
}

/// Names a PySpark shell defines.
const PYTHON_NAMES: &[&str] = &["spark", "sc", "sqlContext", "sqlCtx"];

/// A Python exception raised at the top level of a statement, as `fake_shell.py`
/// reports it (the `<stdin>` frame left out).
fn python_error(class: &str, message: &str) -> Outcome {
    let last = match message.is_empty() {
        true => format!("{class}\n"),
        false => format!("{class}: {message}\n"),
    };
    Outcome::error(
        class,
        message,
        vec!["Traceback (most recent call last):\n".into(), last],
    )
}

/// `Name("text")` or `Name('text')` or `Name()`: the name and the text.
fn call_with_literal(s: &str) -> Option<(&str, &str)> {
    let (name, rest) = s.trim().split_once('(')?;
    let inner = rest.strip_suffix(')')?.trim();
    let text = match inner.is_empty() {
        true => "",
        false => string_literal(inner, &['"', '\''])?,
    };
    Some((name.trim(), text))
}

/// The text of a string literal quoted with one of `quotes`.
fn string_literal<'a>(s: &'a str, quotes: &[char]) -> Option<&'a str> {
    quotes.iter().find_map(|q| {
        let inner = s.strip_prefix(*q)?.strip_suffix(*q)?;
        (!inner.contains(*q)).then_some(inner)
    })
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The query in sparkmagic's `%%sql` code (`….sql(u"""<query> """).toJSON…`,
/// for both pyspark and Scala sessions).
fn wrapped_query(code: &str) -> Option<String> {
    if !code.contains("toJSON") {
        return None;
    }
    let start = code.find(".sql(")? + ".sql(".len();
    let rest = code[start..].trim_start_matches('u');
    let rest = rest.strip_prefix("\"\"\"")?;
    let end = rest.find("\"\"\"")?;
    Some(rest[..end].trim().to_owned())
}

/// What `%%sql` prints: each row as a JSON object, one a line.
fn printed_rows(query: &str, trailer: &str) -> Outcome {
    match sql(query) {
        Outcome::Ok(data) => {
            let result = &data["application/json"];
            let names: Vec<&str> = result["schema"]["fields"]
                .as_array()
                .map(|f| f.iter().filter_map(|f| f["name"].as_str()).collect())
                .unwrap_or_default();
            let lines: Vec<String> = result["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|row| {
                    let object: Map<String, Value> = names
                        .iter()
                        .zip(row.as_array().map(Vec::as_slice).unwrap_or_default())
                        .filter(|(_, v)| !v.is_null())
                        .map(|(n, v)| ((*n).to_owned(), v.clone()))
                        .collect();
                    Value::Object(object).to_string()
                })
                .collect();
            let text = lines.join("\n");
            Outcome::text(match text.is_empty() {
                true => text,
                false => format!("{text}{trailer}"),
            })
        }
        error => error,
    }
}

/// `code` without SQL comments (`/* … */`, `-- …` to the end of the line) outside
/// quotes, as Spark's parser skips them (dbt starts every query with one).
fn without_comments(code: &str) -> String {
    let (mut out, mut chars, mut quote) = (String::new(), code.chars().peekable(), None);
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '/') if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
                continue;
            }
            (None, '-') if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                out.push('\n');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A Spark SQL statement, as Livy's SQL interpreter answers it.
fn sql(code: &str) -> Outcome {
    let code = without_comments(code);
    let statement = code.trim().trim_end_matches(';').trim();
    let lower = statement.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let field = |name: &str, ty: &str, nullable: bool| json!({ "name": name, "type": ty, "nullable": nullable, "metadata": {} });
    let table = |fields: Vec<Value>, rows: Vec<Value>| {
        Outcome::Ok(json!({
            "application/json": {
                "schema": { "type": "struct", "fields": fields },
                "data": rows,
            }
        }))
    };
    match words.as_slice() {
        ["show", "databases" | "schemas" | "namespaces", ..] => table(
            vec![field("namespace", "string", false)],
            vec![json!(["default"])],
        ),
        ["show", "table", "extended", ..] => table(
            vec![
                field("namespace", "string", false),
                field("tableName", "string", false),
                field("isTemporary", "boolean", false),
                field("information", "string", false),
            ],
            vec![],
        ),
        ["show", "tables", ..] => table(
            vec![
                field("namespace", "string", false),
                field("tableName", "string", false),
                field("isTemporary", "boolean", false),
            ],
            vec![],
        ),
        ["select", ..] if !words.contains(&"from") => match select_literals(&statement[6..]) {
            Some(columns) => {
                let (fields, row): (Vec<Value>, Vec<Value>) = columns
                    .into_iter()
                    .map(|c| (field(&c.name, &c.ty, c.value.is_null()), c.value))
                    .unzip();
                table(fields, vec![Value::Array(row)])
            }
            None => parse_error(statement),
        },
        ["select", ..] | ["with", ..] => {
            let at = words.iter().position(|w| *w == "from").unwrap_or(0);
            let name = statement
                .split_whitespace()
                .nth(at + 1)
                .unwrap_or("")
                .trim_end_matches([')', ',']);
            let pos = statement.find(name).unwrap_or(0);
            sql_error(
                &format!("Table or view not found: {name}; line 1 pos {pos}"),
                "org.apache.spark.sql.catalyst.analysis.package$AnalysisErrorAt.failAnalysis(package.scala:42)",
            )
        }
        [first, ..]
            if [
                "create", "drop", "insert", "use", "alter", "truncate", "cache", "uncache",
                "refresh", "analyze", "merge", "delete", "update", "set", "msck",
            ]
            .contains(first) =>
        {
            table(vec![], vec![])
        }
        _ => parse_error(statement),
    }
}

fn sql_error(message: &str, frame: &str) -> Outcome {
    Outcome::error(
        "Error",
        message,
        vec![
            frame.into(),
            "org.apache.spark.sql.SparkSession.sql(SparkSession.scala:617)".into(),
            "org.apache.livy.repl.SQLInterpreter.execute(SQLInterpreter.scala:95)".into(),
        ],
    )
}

fn parse_error(statement: &str) -> Outcome {
    let token = statement.split_whitespace().next().unwrap_or("<EOF>");
    sql_error(
        &format!("\n[PARSE_SYNTAX_ERROR] Syntax error at or near '{token}'(line 1, pos 0)\n\n== SQL ==\n{statement}\n^^^\n"),
        "org.apache.spark.sql.catalyst.parser.ParseException.withCommand(ParseDriver.scala:306)",
    )
}

/// One selected literal: its column name, Spark type and value.
struct Column {
    name: String,
    ty: String,
    value: Value,
}

/// `1 as id, 'a', 2.5 AS x, true, null, 1 + 2`: Spark's names (the expression's
/// text, or the alias), types and values; `None` for anything else.
fn select_literals(list: &str) -> Option<Vec<Column>> {
    split_top_level(list)
        .into_iter()
        .map(|item| {
            let item = item.trim();
            let (expr, alias) = match find_alias(item) {
                Some((expr, alias)) => (expr.trim(), Some(alias.trim().trim_matches('`'))),
                None => (item, None),
            };
            let (ty, value, shown) = literal(expr)?;
            Some(Column {
                name: alias.map_or(shown, str::to_owned),
                ty,
                value,
            })
        })
        .collect()
}

/// Splits at commas outside quotes and parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut quote, mut start) = (Vec::new(), 0i32, None, 0);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// `<expr> AS <alias>` (any case) outside quotes.
fn find_alias(item: &str) -> Option<(&str, &str)> {
    let lower = item.to_ascii_lowercase();
    let at = lower.rfind(" as ")?;
    let alias = &item[at + 4..];
    is_identifier(alias.trim().trim_matches('`')).then(|| (&item[..at], alias))
}

/// A literal's Spark type, value and the column name Spark gives it. Integer
/// arithmetic with `+ - *` (Spark's `/` divides as doubles: not simulated).
fn literal(expr: &str) -> Option<(String, Value, String)> {
    if let Some(text) = string_literal(expr, &['\'', '"']) {
        return Some(("string".into(), json!(text), text.to_owned()));
    }
    match expr.to_ascii_lowercase().as_str() {
        "true" | "false" => {
            let b = expr.eq_ignore_ascii_case("true");
            return Some(("boolean".into(), json!(b), b.to_string()));
        }
        "null" => return Some(("void".into(), Value::Null, "NULL".into())),
        _ => {}
    }
    if let Some((whole, fraction)) = expr.split_once('.') {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if digits(whole.trim_start_matches('-')) && digits(fraction) {
            let value: f64 = expr.parse().ok()?;
            let precision = whole.trim_start_matches('-').len() + fraction.len();
            let ty = format!("decimal({precision},{})", fraction.len());
            return Some((ty, json!(value), expr.to_owned()));
        }
    }
    if expr.contains('/') {
        return None;
    }
    let value = Arith::new(expr).parse()?.ok()?;
    let shown = match expr.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        true => expr.to_owned(),
        false => format!("({})", spaced(expr)),
    };
    Some(("integer".into(), json!(value), shown))
}

/// `1+2` as Spark names the column: `1 + 2`.
fn spaced(expr: &str) -> String {
    let mut out = String::new();
    for c in expr.chars().filter(|c| !c.is_whitespace()) {
        match c {
            '+' | '*' => out.push_str(&format!(" {c} ")),
            '-' if !out.is_empty() && !out.ends_with(' ') => out.push_str(" - "),
            c => out.push(c),
        }
    }
    out
}

/// A tiny integer-arithmetic parser: `+ - * /`, parentheses, unary minus.
pub(super) struct Arith<'a> {
    s: &'a [u8],
    i: usize,
}

type ArithResult = Option<Result<i64, ()>>;

impl<'a> Arith<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Self {
            s: s.as_bytes(),
            i: 0,
        }
    }

    /// `None` if the text is not arithmetic; `Some(Err)` on division by zero.
    pub(super) fn parse(mut self) -> ArithResult {
        let v = self.expr(0)?;
        self.ws();
        (self.i == self.s.len()).then_some(v)
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn expr(&mut self, depth: usize) -> ArithResult {
        let mut acc = self.term(depth)?;
        loop {
            self.ws();
            match self.s.get(self.i) {
                Some(b'+') | Some(b'-') => {
                    let op = self.s[self.i];
                    self.i += 1;
                    let rhs = self.term(depth)?;
                    acc = match (acc, rhs) {
                        (Ok(a), Ok(b)) if op == b'+' => Ok(a.checked_add(b)?),
                        (Ok(a), Ok(b)) => Ok(a.checked_sub(b)?),
                        _ => Err(()),
                    };
                }
                _ => return Some(acc),
            }
        }
    }

    fn term(&mut self, depth: usize) -> ArithResult {
        let mut acc = self.atom(depth)?;
        loop {
            self.ws();
            match self.s.get(self.i) {
                Some(b'*') | Some(b'/') => {
                    let op = self.s[self.i];
                    self.i += 1;
                    let rhs = self.atom(depth)?;
                    acc = match (acc, rhs) {
                        (Ok(a), Ok(b)) if op == b'*' => Ok(a.checked_mul(b)?),
                        (Ok(_), Ok(0)) => Err(()),
                        (Ok(a), Ok(b)) => Ok(a.checked_div(b)?),
                        _ => Err(()),
                    };
                }
                _ => return Some(acc),
            }
        }
    }

    fn atom(&mut self, depth: usize) -> ArithResult {
        if depth > 64 {
            return None;
        }
        self.ws();
        match self.s.get(self.i)? {
            b'(' => {
                self.i += 1;
                let v = self.expr(depth + 1)?;
                self.ws();
                (self.s.get(self.i) == Some(&b')')).then(|| {
                    self.i += 1;
                    v
                })
            }
            b'-' => {
                self.i += 1;
                Some(self.atom(depth + 1)?.map(|v| -v))
            }
            c if c.is_ascii_digit() => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                Some(Ok(text.parse().ok()?))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(outcome: Outcome) -> String {
        match outcome {
            Outcome::Ok(data) => data["text/plain"].as_str().unwrap().to_owned(),
            other => panic!("{other:?}"),
        }
    }

    fn error(outcome: Outcome) -> (String, String, Vec<String>) {
        match outcome {
            Outcome::Error {
                ename,
                evalue,
                traceback,
            } => (ename, evalue, traceback),
            other => panic!("{other:?}"),
        }
    }

    /// `application/json`'s fields (name, type, nullable) and rows.
    fn table(outcome: Outcome) -> (Vec<(String, String, bool)>, Value) {
        match outcome {
            Outcome::Ok(data) => {
                let result = &data["application/json"];
                assert_eq!(result["schema"]["type"], "struct");
                let fields = result["schema"]["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| {
                        assert_eq!(f["metadata"], json!({}));
                        (
                            f["name"].as_str().unwrap().to_owned(),
                            f["type"].as_str().unwrap().to_owned(),
                            f["nullable"].as_bool().unwrap(),
                        )
                    })
                    .collect();
                (fields, result["data"].clone())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pyspark_prints_as_the_python_shell_does() {
        let mut i = Interpreters::default();
        assert_eq!(text(i.run("pyspark", "1+1")), "2");
        assert_eq!(text(i.run("pyspark", " (2 + 3) * -4 ")), "-20");
        assert_eq!(text(i.run("pyspark", "print('hi')")), "hi");
        assert_eq!(text(i.run("pyspark", "print(6*7)")), "42");
        assert!(text(i.run("pyspark", "spark")).contains("SparkSession"));
        assert_eq!(text(i.run("pyspark", "df = spark.range(10)")), "");
        assert_eq!(text(i.run("pyspark", &"(".repeat(500))), "");
        let (ename, evalue, traceback) = error(i.run("pyspark", "raise ValueError('boom')"));
        assert_eq!((ename.as_str(), evalue.as_str()), ("ValueError", "boom"));
        assert_eq!(
            traceback,
            ["Traceback (most recent call last):\n", "ValueError: boom\n"]
        );
        let (ename, evalue, _) = error(i.run("pyspark", "1/0"));
        assert_eq!(
            (ename.as_str(), evalue.as_str()),
            ("ZeroDivisionError", "division by zero")
        );
        let (ename, evalue, _) = error(i.run("pyspark", "undefined_thing"));
        assert_eq!(ename, "NameError");
        assert_eq!(evalue, "name 'undefined_thing' is not defined");
        assert_eq!(error(i.run("pyspark", "raise KeyError")).0, "KeyError");
    }

    #[test]
    fn scala_prints_as_the_repl_does_numbering_results() {
        // ScalaInterpreterSpec: "res0: Int = 3\n", "x: Int = 1\n", "Hello World\n".
        let mut i = Interpreters::default();
        assert_eq!(text(i.run("spark", "1 + 2")), "res0: Int = 3\n");
        assert_eq!(text(i.run("spark", "val x = 1")), "x: Int = 1\n");
        assert_eq!(
            text(i.run("spark", "println(\"Hello World\")")),
            "Hello World\n"
        );
        assert_eq!(text(i.run("spark", "print(1)")), "1");
        assert_eq!(text(i.run("spark", "2 * 21")), "res1: Int = 42\n");
        assert_eq!(
            text(i.run("spark", "sc.version")),
            format!("res2: String = {SPARK_VERSION}\n")
        );
        let (ename, evalue, _) = error(i.run("spark", "x"));
        assert_eq!(ename, "Error");
        assert!(evalue.contains("error: not found: value x"), "{evalue}");
        let (ename, evalue, traceback) =
            error(i.run("spark", "throw new RuntimeException(\"boom\")"));
        assert_eq!(ename, "Error");
        assert_eq!(evalue, "java.lang.RuntimeException: boom");
        assert!(traceback[0].contains("elided"));
        assert_eq!(
            error(i.run("spark", "1/0")).1,
            "java.lang.ArithmeticException: / by zero"
        );
        // A pyspark statement in the same (shared) session does not count.
        i.run("pyspark", "1+1");
        assert_eq!(text(i.run("spark", "1")), "res3: Int = 1\n");
    }

    #[test]
    fn sql_answers_with_a_schema_and_rows() {
        let mut i = Interpreters::default();
        // dbt's connection test, and Spark's names for unaliased literals.
        let (fields, rows) = table(i.run("sql", "select 1 as id"));
        assert_eq!(fields, [("id".into(), "integer".into(), false)]);
        assert_eq!(rows, json!([[1]]));
        let (fields, rows) = table(i.run(
            "sql",
            "SELECT 1, 'a' AS s, 2.50 AS d, true, null, 1 + 2 AS three, 'x, y'",
        ));
        let names: Vec<&str> = fields.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, ["1", "s", "d", "true", "NULL", "three", "x, y"]);
        let types: Vec<&str> = fields.iter().map(|f| f.1.as_str()).collect();
        assert_eq!(
            types,
            [
                "integer",
                "string",
                "decimal(3,2)",
                "boolean",
                "void",
                "integer",
                "string"
            ]
        );
        assert!(fields[4].2, "null is nullable");
        assert_eq!(rows, json!([[1, "a", 2.5, true, null, 3, "x, y"]]));
        let (fields, rows) = table(i.run("sql", "show databases"));
        assert_eq!(fields[0].0, "namespace");
        assert_eq!(rows, json!([["default"]]));
        let (fields, rows) = table(i.run("sql", "show table extended in default like '*'"));
        assert_eq!(fields.len(), 4);
        assert_eq!(rows, json!([]));
        let (fields, rows) = table(i.run("sql", "create table t as select 1 as id"));
        assert!(fields.is_empty() && rows == json!([]));
        let (ename, evalue, traceback) = error(i.run("sql", "select * from missing_table"));
        assert_eq!(ename, "Error");
        assert_eq!(
            evalue,
            "Table or view not found: missing_table; line 1 pos 14"
        );
        assert!(!traceback.is_empty());
        assert!(error(i.run("sql", "selec 1"))
            .1
            .contains("PARSE_SYNTAX_ERROR"));
    }

    #[test]
    fn sparkmagic_sql_prints_the_rows_of_its_query() {
        // sparkmagic 0.23's %%sql, for a pyspark and a Scala session.
        let mut i = Interpreters::default();
        let python = "for json_result in sqlContext.sql(u\"\"\"select 1 as a, 'x' as b \"\"\").toJSON(use_unicode=True).take(2500): print(json_result)";
        assert_eq!(text(i.run("pyspark", python)), r#"{"a":1,"b":"x"}"#);
        let scala = "sqlContext.sql(\"\"\"select 2 as a \"\"\").toJSON.take(2500).foreach(println)";
        assert_eq!(text(i.run("spark", scala)), "{\"a\":2}\n");
        let (ename, _, _) = error(i.run(
            "pyspark",
            &python.replace("select 1 as a, 'x' as b", "select * from t"),
        ));
        assert_eq!(ename, "Error");
    }
}
