//! `--where`: a condition over the `runs` table's columns. The text is parsed as exactly one
//! SQL expression (sqlparser, the parser polars' SQL is built on), checked node by node
//! against a short list of what a condition over columns needs (columns of `runs`,
//! literals, comparisons, `AND`/`OR`/`NOT`, arithmetic, `IS [NOT] NULL`, `BETWEEN`, `IN (…)`,
//! `LIKE`, `CAST`), and written back from the parsed tree. Queries are built from that
//! rendering, never from the user's text, so no predicate can close a parenthesis, end the
//! statement or reach another table.

use polars::prelude::{DataType, Schema};
use sqlparser::ast::{BinaryOperator, Expr, Ident, UnaryOperator, Value};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::error::{Error, Result};

/// A parsed, checked `--where` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct RunsPredicate {
    expr: Expr,
}

impl RunsPredicate {
    /// Parses `text` as one boolean expression over the columns of `runs` (`columns`).
    ///
    /// # Errors
    /// [`Error::Config`] naming `--where`, the text and what was expected: empty text, a
    /// syntax error, text after the expression, an unknown column, a construct other than
    /// those listed in the module docs, or an expression that is not a condition.
    pub fn parse(text: &str, columns: &Schema) -> Result<RunsPredicate> {
        let refuse = |why: String| Error::Config(format!("--where {text:?}: {why}"));
        if text.trim().is_empty() {
            return Err(refuse(
                "expected a condition over the runs table, e.g. \"no_dropout AND seed <= 5\""
                    .into(),
            ));
        }
        let dialect = GenericDialect {};
        let mut parser = Parser::new(&dialect)
            .try_with_sql(text)
            .map_err(|e| refuse(format!("not SQL: {e}")))?;
        let expr = parser.parse_expr().map_err(|e| refuse(syntax_error(&e.to_string())))?;
        let next = parser.peek_token().token;
        if next != Token::EOF {
            return Err(refuse(format!(
                "expected one condition, but {next} follows `{expr}` (quote strings with '…')"
            )));
        }
        check(&expr, columns, 0).map_err(refuse)?;
        if !is_condition(&expr, columns) {
            return Err(refuse(format!(
                "`{expr}` is not a condition: expected a comparison or a boolean column, e.g. \"seed <= 5\""
            )));
        }
        Ok(RunsPredicate { expr })
    }

    /// The condition as SQL, each column qualified with `qualifier` (`r` gives `r.seed`;
    /// empty: bare names), in parentheses.
    pub fn to_sql(&self, qualifier: &str) -> String {
        let mut expr = self.expr.clone();
        if !qualifier.is_empty() {
            qualify(&mut expr, qualifier);
        }
        format!("({expr})")
    }
}

/// sqlparser's message without its prefix.
fn syntax_error(message: &str) -> String {
    message.strip_prefix("sql parser error: ").unwrap_or(message).to_string()
}

/// How deeply a condition may nest (a chain `a AND b AND …` nests one level a term): deeper
/// ones are refused before anything recurses over them (an engine slows down or overflows
/// its stack on them); a long list of values belongs in `IN (…)`.
const MAX_DEPTH: usize = 64;

/// Checks every node of `expr`, `depth` levels down, against what a condition over `columns`
/// may hold.
fn check(expr: &Expr, columns: &Schema, depth: usize) -> std::result::Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "nested more than {MAX_DEPTH} levels deep: write long lists of values as IN (…)"
        ));
    }
    let all = |exprs: &[&Expr]| exprs.iter().try_for_each(|e| check(e, columns, depth + 1));
    match expr {
        Expr::Identifier(ident) => column(ident, columns).map(|_| ()),
        Expr::Value(value) => match &value.value {
            Value::Number(number, _) => check_number(number),
            Value::SingleQuotedString(_) | Value::Boolean(_) | Value::Null => Ok(()),
            _ => Err(format!("unsupported literal `{value}`")),
        },
        Expr::BinaryOp { left, op, right } => {
            use BinaryOperator as B;
            match op {
                B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq | B::And | B::Or => {}
                B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {}
                other => return Err(format!("unsupported operator `{other}`")),
            }
            all(&[left, right])
        }
        Expr::UnaryOp { op: UnaryOperator::Not | UnaryOperator::Minus, expr } => {
            check(expr, columns, depth + 1)
        }
        Expr::Nested(inner) | Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
            check(inner, columns, depth + 1)
        }
        Expr::IsTrue(inner)
        | Expr::IsFalse(inner)
        | Expr::IsNotTrue(inner)
        | Expr::IsNotFalse(inner) => {
            if !is_condition(inner, columns) {
                return Err(format!(
                    "`{expr}`: IS TRUE and IS FALSE test a condition or a boolean column"
                ));
            }
            check(inner, columns, depth + 1)
        }
        Expr::Cast { expr: inner, format: None, array: false, data_type, .. } => {
            let target = data_type.to_string().to_uppercase();
            if !CAST_TYPES.contains(&target.as_str()) {
                return Err(format!(
                    "CAST to {target} is not supported: cast to one of {}",
                    CAST_TYPES.join(", ")
                ));
            }
            if matches!(**inner, Expr::Cast { .. }) {
                return Err(format!("`{expr}`: a CAST of a CAST is not supported"));
            }
            check(inner, columns, depth + 1)
        }
        Expr::Between { expr, low, high, .. } => all(&[expr, low, high]),
        Expr::InList { expr, list, .. } => {
            check(expr, columns, depth + 1)?;
            // Literals only: the engines take a list of values, not of expressions.
            list.iter().try_for_each(|e| match e {
                Expr::Value(_) => check(e, columns, depth + 1),
                Expr::UnaryOp { op: UnaryOperator::Minus, expr: value }
                    if matches!(**value, Expr::Value(_)) =>
                {
                    check(e, columns, depth + 1)
                }
                other => Err(format!("`{other}` in IN (…): expected values (numbers, 'strings')")),
            })
        }
        Expr::Like { expr, pattern, any: false, escape_char: None, .. }
        | Expr::ILike { expr, pattern, any: false, escape_char: None, .. } => all(&[expr, pattern]),
        Expr::CompoundIdentifier(_) => {
            Err("write columns of runs without a table name (seed, not runs.seed)".into())
        }
        other => Err(format!(
            "`{other}` is not supported: a condition over the runs columns may use literals, comparisons, AND/OR/NOT, + - * / %, IS [NOT] NULL, BETWEEN, IN (…), LIKE and CAST"
        )),
    }
}

/// The types a `--where` may `CAST` to, which every engine reads alike.
const CAST_TYPES: [&str; 8] =
    ["INT", "INTEGER", "BIGINT", "DOUBLE", "FLOAT", "VARCHAR", "TEXT", "BOOLEAN"];

/// A number literal the engines read: a 64-bit integer, or a finite float.
fn check_number(number: &str) -> std::result::Result<(), String> {
    let integer = !number.contains(['.', 'e', 'E']);
    let fits = match integer {
        true => number.parse::<i64>().is_ok(),
        false => number.parse::<f64>().is_ok_and(f64::is_finite),
    };
    if fits { Ok(()) } else { Err(format!("the number {number} is out of range")) }
}

/// The type of the runs column `ident`, or an error listing the columns.
fn column<'a>(ident: &Ident, columns: &'a Schema) -> std::result::Result<&'a DataType, String> {
    columns.get(ident.value.as_str()).ok_or_else(|| {
        let names: Vec<&str> = columns.iter_names().map(|n| n.as_str()).collect();
        format!(
            "unknown column '{}' of the runs table (its columns: {})",
            ident.value,
            names.join(", ")
        )
    })
}

/// Whether `expr` is a condition: a comparison, a logical combination, a test, or a boolean
/// column or literal.
fn is_condition(expr: &Expr, columns: &Schema) -> bool {
    use BinaryOperator as B;
    match expr {
        Expr::BinaryOp { op, .. } => {
            matches!(op, B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq | B::And | B::Or)
        }
        Expr::UnaryOp { op: UnaryOperator::Not, .. }
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::Between { .. }
        | Expr::InList { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. } => true,
        Expr::Nested(inner) => is_condition(inner, columns),
        Expr::Identifier(ident) => columns.get(ident.value.as_str()) == Some(&DataType::Boolean),
        Expr::Value(value) => matches!(value.value, Value::Boolean(_)),
        _ => false,
    }
}

/// Rewrites every column `c` of `expr` as `qualifier.c`.
fn qualify(expr: &mut Expr, qualifier: &str) {
    match expr {
        Expr::Identifier(ident) => {
            *expr = Expr::CompoundIdentifier(vec![Ident::new(qualifier), ident.clone()]);
        }
        Expr::BinaryOp { left, right, .. } => {
            qualify(left, qualifier);
            qualify(right, qualifier);
        }
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr)
        | Expr::IsTrue(expr)
        | Expr::IsFalse(expr)
        | Expr::IsNotTrue(expr)
        | Expr::IsNotFalse(expr)
        | Expr::Cast { expr, .. } => qualify(expr, qualifier),
        Expr::Between { expr, low, high, .. } => {
            qualify(expr, qualifier);
            qualify(low, qualifier);
            qualify(high, qualifier);
        }
        Expr::InList { expr, list, .. } => {
            qualify(expr, qualifier);
            list.iter_mut().for_each(|e| qualify(e, qualifier));
        }
        Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => {
            qualify(expr, qualifier);
            qualify(pattern, qualifier);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::Field;

    fn runs_columns() -> Schema {
        Schema::from_iter([
            Field::new("seed".into(), DataType::UInt64),
            Field::new("no_dropout".into(), DataType::Boolean),
            Field::new("dataset".into(), DataType::String),
            Field::new("sorting_file".into(), DataType::String),
        ])
    }

    fn parse(text: &str) -> std::result::Result<String, String> {
        RunsPredicate::parse(text, &runs_columns())
            .map(|p| p.to_sql("r"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn conditions_are_rendered_from_the_parsed_tree() {
        assert_eq!(parse("no_dropout AND seed <= 5").unwrap(), "(r.no_dropout AND r.seed <= 5)");
        assert_eq!(
            parse("sorting_file IS NULL OR dataset IN ('mnist', 'cifar10')").unwrap(),
            "(r.sorting_file IS NULL OR r.dataset IN ('mnist', 'cifar10'))"
        );
        assert_eq!(parse("seed BETWEEN 1 AND 3").unwrap(), "(r.seed BETWEEN 1 AND 3)");
        assert_eq!(parse("NOT no_dropout").unwrap(), "(NOT r.no_dropout)");
    }

    #[test]
    fn anything_but_one_condition_over_the_runs_columns_is_refused() {
        for (text, expected) in [
            ("1=1) OR (1=1", "expected one condition, but ) follows `1 = 1`"),
            ("1=1; DROP TABLE runs", "expected one condition, but ; follows"),
            ("", "expected a condition over the runs table"),
            ("   ", "expected a condition over the runs table"),
            ("sed < 3", "unknown column 'sed' of the runs table (its columns: seed, no_dropout"),
            ("seed IN (SELECT seed FROM runs)", "is not supported"),
            ("EXISTS (SELECT 1 FROM presentations)", "is not supported"),
            ("runs.seed = 1", "without a table name"),
            ("seed", "`seed` is not a condition"),
            ("seed +", "Expected: an expression"),
            ("seed = 1e400", "the number 1e400 is out of range"),
            ("CAST(seed AS BLOB) = 1", "CAST to BLOB is not supported"),
            ("seed IS TRUE", "IS TRUE and IS FALSE test a condition or a boolean column"),
            ("seed IN (1+1)", "`1 + 1` in IN (…): expected values"),
            ("CAST(CAST(seed AS INT) AS INT) = 1", "a CAST of a CAST is not supported"),
            (
                "seed = 99999999999999999999999",
                "the number 99999999999999999999999 is out of range",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(&format!("--where {text:?}: ")), "{err}");
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}seed = 1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse(&deep).unwrap_err().starts_with("--where"));
        let chain = format!("seed{} > 0", "+1".repeat(6000));
        assert!(parse(&chain).unwrap_err().contains("nested more than 64 levels deep"));
        assert!(parse(&format!("seed IN ({})", vec!["1"; 20_000].join(", "))).is_ok());
        assert!(parse("no_dropout IS TRUE AND (seed > 1) IS NOT FALSE").is_ok());
    }
}
