//! The calculator: an arithmetic expression evaluator (numbers, `+ - * / % ^`, parentheses,
//! constants `pi` and `e`, and functions such as `sqrt`, `sin`, `log`, `min`). It parses and
//! evaluates; nothing is executed, and input size and nesting depth are bounded.
//! Hand-written because the evaluator crates either do integer division (`5/2 = 2`) or bring
//! a whole scripting language.

use futures_util::future::BoxFuture;
use hearth_llm::ToolSpec;
use serde_json::{json, Value};

use crate::{Tool, ToolError};

const MAX_LEN: usize = 1000;
const MAX_DEPTH: usize = 64;

/// The `calculator` tool.
pub struct Calculator;

impl Tool for Calculator {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "calculator".into(),
            description: "Evaluates an arithmetic expression exactly as written, e.g. `(2+3)*4`, \
                          `2^10`, `sqrt(2)`, `17 % 5`, `sin(pi/2)`, `log(100)`, `max(3, 7)`."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {"expression": {"type": "string", "description": "The expression to evaluate."}},
                "required": ["expression"],
                "additionalProperties": false,
            }),
        }
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        Box::pin(async move {
            let expr = arguments["expression"].as_str().unwrap_or_default();
            evaluate(expr).map(format_number).map_err(ToolError::Failed)
        })
    }
}

/// Formats without float noise: integers plainly, others to 12 significant digits.
fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let s = format!("{:.12}", x);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_owned()
    }
}

/// Evaluates `expr`; the error says what is wrong and where.
pub fn evaluate(expr: &str) -> Result<f64, String> {
    if expr.len() > MAX_LEN {
        return Err(format!(
            "the expression is longer than {MAX_LEN} characters"
        ));
    }
    let tokens = tokenize(expr)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let value = p.expr()?;
    if let Some(t) = p.tokens.get(p.pos) {
        return Err(format!("unexpected `{}`", t.text()));
    }
    if !value.is_finite() {
        return Err("the result is not a finite number (division by zero or overflow)".into());
    }
    Ok(value)
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Num(f64),
    Ident(String),
    Op(char),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Num(n) => n.to_string(),
            Token::Ident(s) => s.clone(),
            Token::Op(c) => c.to_string(),
        }
    }
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == '_' && i > 0 && chars[i - 1].is_ascii_digit() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let n = text
                .parse::<f64>()
                .map_err(|_| format!("`{text}` is not a number"))?;
            out.push(Token::Num(n));
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric()) {
                i += 1;
            }
            out.push(Token::Ident(
                chars[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else if "+-*/%^(),".contains(c) {
            out.push(Token::Op(c));
            i += 1;
        } else if c == '×' {
            out.push(Token::Op('*'));
            i += 1;
        } else if c == '÷' {
            out.push(Token::Op('/'));
            i += 1;
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    if out.is_empty() {
        return Err("the expression is empty".into());
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, op: char) -> bool {
        if self.peek() == Some(&Token::Op(op)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    // expr := term (('+' | '-') term)*
    fn expr(&mut self) -> Result<f64, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("the expression is nested too deeply".into());
        }
        let mut v = self.term()?;
        loop {
            if self.eat('+') {
                v += self.term()?;
            } else if self.eat('-') {
                v -= self.term()?;
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(v)
    }

    // term := unary (('*' | '/' | '%') unary | implicit product)*
    fn term(&mut self) -> Result<f64, String> {
        let mut v = self.unary()?;
        loop {
            if self.eat('*') {
                v *= self.unary()?;
            } else if self.eat('/') {
                let d = self.unary()?;
                if d == 0.0 {
                    return Err("division by zero".into());
                }
                v /= d;
            } else if self.eat('%') {
                let d = self.unary()?;
                if d == 0.0 {
                    return Err("modulo by zero".into());
                }
                v %= d;
            } else if matches!(self.peek(), Some(Token::Op('(')) | Some(Token::Ident(_))) {
                // `2(3+4)` and `2pi` multiply.
                v *= self.unary()?;
            } else {
                break;
            }
        }
        Ok(v)
    }

    // unary := ('-' | '+') unary | power
    fn unary(&mut self) -> Result<f64, String> {
        if self.eat('-') {
            return Ok(-self.unary()?);
        }
        if self.eat('+') {
            return self.unary();
        }
        self.power()
    }

    // power := atom ('^' unary)?   (right-associative, binds tighter than unary minus on its left)
    fn power(&mut self) -> Result<f64, String> {
        let base = self.atom()?;
        if self.eat('^') {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err("the expression is nested too deeply".into());
            }
            let exp = self.unary()?;
            self.depth -= 1;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<f64, String> {
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Num(n)) => {
                self.pos += 1;
                Ok(n)
            }
            Some(Token::Op('(')) => {
                self.pos += 1;
                let v = self.expr()?;
                if !self.eat(')') {
                    return Err("missing `)`".into());
                }
                Ok(v)
            }
            Some(Token::Ident(name)) => {
                self.pos += 1;
                match name.as_str() {
                    "pi" | "π" => return Ok(std::f64::consts::PI),
                    "e" => return Ok(std::f64::consts::E),
                    "tau" => return Ok(std::f64::consts::TAU),
                    _ => {}
                }
                if !self.eat('(') {
                    return Err(format!("unknown name `{name}`"));
                }
                let mut args = vec![self.expr()?];
                while self.eat(',') {
                    args.push(self.expr()?);
                }
                if !self.eat(')') {
                    return Err(format!("missing `)` after the arguments of `{name}`"));
                }
                apply(&name, &args)
            }
            Some(t) => Err(format!("unexpected `{}`", t.text())),
            None => Err("the expression ends too early".into()),
        }
    }
}

fn apply(name: &str, args: &[f64]) -> Result<f64, String> {
    let one = || {
        if args.len() == 1 {
            Ok(args[0])
        } else {
            Err(format!("`{name}` takes one argument"))
        }
    };
    Ok(match name {
        "sqrt" => {
            let x = one()?;
            if x < 0.0 {
                return Err("square root of a negative number".into());
            }
            x.sqrt()
        }
        "abs" => one()?.abs(),
        "sin" => one()?.sin(),
        "cos" => one()?.cos(),
        "tan" => one()?.tan(),
        "asin" => one()?.asin(),
        "acos" => one()?.acos(),
        "atan" => one()?.atan(),
        "exp" => one()?.exp(),
        "ln" => one()?.ln(),
        "log" | "log10" => one()?.log10(),
        "log2" => one()?.log2(),
        "floor" => one()?.floor(),
        "ceil" => one()?.ceil(),
        "round" => one()?.round(),
        "min" if !args.is_empty() => args.iter().copied().fold(f64::INFINITY, f64::min),
        "max" if !args.is_empty() => args.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        _ => return Err(format!("unknown function `{name}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_arithmetic() {
        let cases = [
            ("1 + 2 * 3", 7.0),
            ("(1 + 2) * 3", 9.0),
            ("2^3^2", 512.0),
            ("-2^2", -4.0),
            ("10 / 4", 2.5),
            ("17 % 5", 2.0),
            ("2(3+4)", 14.0),
            ("sqrt(16) + abs(-3)", 7.0),
            ("max(1, 9, 4)", 9.0),
            ("1_000 * 2", 2000.0),
            ("1.5e3", 1500.0),
            ("6 × 7", 42.0),
        ];
        for (expr, want) in cases {
            assert_eq!(evaluate(expr), Ok(want), "{expr}");
        }
        assert!((evaluate("sin(pi/2)").expect("ok") - 1.0).abs() < 1e-12);
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(42.0), "42");
    }

    #[test]
    fn rejects_bad_input_clearly() {
        for (expr, says) in [
            ("", "empty"),
            ("1 +", "ends too early"),
            ("1 / 0", "division by zero"),
            ("(1 + 2", "missing `)`"),
            ("foo(1)", "unknown function"),
            ("x + 1", "unknown name"),
            ("1 $ 2", "unexpected character"),
            ("sqrt(-1)", "negative"),
            ("10^400", "finite"),
        ] {
            let err = evaluate(expr).expect_err(expr);
            assert!(err.contains(says), "{expr}: {err}");
        }
        assert!(evaluate(&"(".repeat(200))
            .expect_err("deep")
            .contains("nested"));
        assert!(evaluate(&"1+".repeat(600))
            .expect_err("long")
            .contains("longer"));
    }
}
