//! Rendering a generated expression as CEL text: plain, as a rule author
//! writes it, or as the reference, with the `tg_*` guards around the
//! operators of the known classes.

use super::grammar::{Arith, Cmp, E, Fun, Lit, Macro, StrFun};
use std::fmt::Write as _;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// What a rule author writes; evaluated by Tollgate and the plain `cel` crate.
    Plain,
    /// With the `tg_*` guards around the operators of the known classes.
    Reference,
}

struct Renderer {
    mode: Mode,
    locals: Vec<String>,
    fresh: u32,
    out: String,
}

pub(super) fn render(e: &E, mode: Mode) -> String {
    let mut r = Renderer { mode, locals: Vec::new(), fresh: 0, out: String::new() };
    r.expr(e);
    r.out
}

fn quote(s: &str) -> String {
    let mut q = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => q.push_str("\\\\"),
            '\'' => q.push_str("\\'"),
            c => q.push(c),
        }
    }
    q.push('\'');
    q
}

fn double_literal(d: f64) -> String {
    let text = format!("{d:?}");
    if d.is_sign_negative() { format!("({text})") } else { text }
}

impl Renderer {
    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    fn lit(&mut self, l: &Lit) {
        let text = match l {
            Lit::Int(i) if *i < 0 => format!("({i})"),
            Lit::Int(i) => i.to_string(),
            Lit::UInt(u) => format!("{u}u"),
            Lit::Double(d) => double_literal(*d),
            Lit::Nan => "double('NaN')".to_owned(),
            Lit::Inf => "double('inf')".to_owned(),
            Lit::Str(s) => quote(s),
            Lit::Bool(b) => b.to_string(),
            Lit::Null => "null".to_owned(),
        };
        self.push(&text);
    }

    /// `[a].map(l, [b].map(r, body(l, r))[0])[0]`: binds both operands
    /// once, evaluating `a` then `b`, erroring if either errors.
    fn bind2(&mut self, a: &E, b: &E, body: impl FnOnce(&mut Self, &str, &str)) {
        let l = self.fresh("tgl");
        let r = self.fresh("tgr");
        self.push("[");
        self.expr(a);
        let _ = write!(self.out, "].map({l}, [");
        // `b` is rendered inside `l`'s scope; `l`'s name is fresh, so no
        // generated name is shadowed.
        self.expr(b);
        let _ = write!(self.out, "].map({r}, ");
        body(self, &l, &r);
        self.push(")[0])[0]");
    }

    /// `(target).name(arg, ...)`.
    fn member(&mut self, target: &E, name: &str, args: &[&E]) {
        self.push("(");
        self.expr(target);
        let _ = write!(self.out, ").{name}(");
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.expr(arg);
        }
        self.push(")");
    }

    fn binary(&mut self, l: &E, op: &str, r: &E) {
        self.push("(");
        self.expr(l);
        let _ = write!(self.out, " {op} ");
        self.expr(r);
        self.push(")");
    }

    fn expr(&mut self, e: &E) {
        let guarded = self.mode != Mode::Plain;
        match e {
            E::Lit(l) => self.lit(l),
            E::Path(p) => self.push(p),
            E::Local(n) => {
                let name = self.locals.len().checked_sub(n + 1).and_then(|i| self.locals.get(i)).cloned();
                self.push(name.as_deref().unwrap_or("args.a"));
            }
            E::Has(t, f) => {
                self.push("has((");
                self.expr(t);
                let _ = write!(self.out, ").{f})");
            }
            E::Select(t, f) => {
                self.push("(");
                self.expr(t);
                let _ = write!(self.out, ").{f}");
            }
            E::Not(a) => {
                self.push("!(");
                self.expr(a);
                self.push(")");
            }
            E::Neg(a) => {
                self.push("-(");
                self.expr(a);
                self.push(")");
            }
            E::Arith(op, l, r) => {
                let (sym, code) = match op {
                    Arith::Add => ("+", 0),
                    Arith::Sub => ("-", 1),
                    Arith::Mul => ("*", 2),
                    Arith::Div => ("/", 3),
                    Arith::Mod => ("%", -1),
                };
                if guarded && code >= 0 {
                    self.bind2(l, r, |s, a, b| {
                        let _ = write!(
                            s.out,
                            "(tg_arith_dev({code}, {a}, {b}) ? tg_widen({code}, {a}, {b}) : {a} {sym} {b})"
                        );
                    });
                } else {
                    self.binary(l, sym, r);
                }
            }
            E::Cmp(op, l, r) => {
                let sym = match op {
                    Cmp::Eq => "==",
                    Cmp::Ne => "!=",
                    Cmp::Lt => "<",
                    Cmp::Le => "<=",
                    Cmp::Gt => ">",
                    Cmp::Ge => ">=",
                };
                let code = match op {
                    Cmp::Lt => 0,
                    Cmp::Le => 1,
                    Cmp::Gt => 2,
                    Cmp::Ge => 3,
                    Cmp::Eq | Cmp::Ne => -1,
                };
                if !guarded || code < 0 {
                    self.binary(l, sym, r);
                    return;
                }
                self.bind2(l, r, |s, a, b| {
                    let _ = write!(s.out, "(tg_ord_dev({a}, {b}) ? tg_ord({code}, {a}, {b}) : {a} {sym} {b})");
                });
            }
            E::And(l, r) => self.binary(l, "&&", r),
            E::Or(l, r) => self.binary(l, "||", r),
            E::In(l, r) => self.binary(l, "in", r),
            E::Cond(c, t, o) => {
                self.push("(");
                self.expr(c);
                self.push(" ? ");
                self.expr(t);
                self.push(" : ");
                self.expr(o);
                self.push(")");
            }
            E::Call(f, a) => match f {
                Fun::SizeMember | Fun::LowerAscii | Fun::UpperAscii | Fun::Trim => {
                    self.push("(");
                    self.expr(a);
                    self.push(match f {
                        Fun::SizeMember => ").size()",
                        Fun::LowerAscii => ").lowerAscii()",
                        Fun::UpperAscii => ").upperAscii()",
                        _ => ").trim()",
                    });
                }
                _ => {
                    let name = match f {
                        Fun::Size => "size",
                        Fun::Int => "int",
                        Fun::UInt => "uint",
                        Fun::Double => "double",
                        _ => "string",
                    };
                    let _ = write!(self.out, "{name}(");
                    self.expr(a);
                    self.push(")");
                }
            },
            E::IndexOf(a, x) => self.member(a, "indexOf", &[x]),
            E::Replace(a, from, to) => self.member(a, "replace", &[from, to]),
            E::Split(a, sep) => self.member(a, "split", &[sep]),
            E::Join(list, sep) => match sep {
                Some(sep) => self.member(list, "join", &[sep]),
                None => self.member(list, "join", &[]),
            },
            E::Matches(a, pattern) => {
                self.push("(");
                self.expr(a);
                let _ = write!(self.out, ").matches({})", quote(pattern));
            }
            E::StrCall(f, a, x) => {
                let name = match f {
                    StrFun::Contains => "contains",
                    StrFun::StartsWith => "startsWith",
                    StrFun::EndsWith => "endsWith",
                };
                self.push("(");
                self.expr(a);
                let _ = write!(self.out, ").{name}(");
                self.expr(x);
                self.push(")");
            }
            E::Index(c, i) => {
                self.push("(");
                self.expr(c);
                self.push(")[");
                self.expr(i);
                self.push("]");
            }
            E::List(items) => {
                self.push("[");
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        self.push(", ");
                    }
                    self.expr(item);
                }
                self.push("]");
            }
            E::Map(entries) => {
                self.push("{");
                for (n, (key, value)) in entries.iter().enumerate() {
                    if n > 0 {
                        self.push(", ");
                    }
                    let _ = write!(self.out, "{}: ", quote(key));
                    self.expr(value);
                }
                self.push("}");
            }
            E::Macro(kind, range, body) => {
                let var = format!("x{}", self.locals.len());
                let name = match kind {
                    Macro::All => "all",
                    Macro::Exists => "exists",
                    Macro::ExistsOne => "exists_one",
                    Macro::Map => "map",
                    Macro::Filter => "filter",
                };
                if guarded {
                    let ordered = matches!(kind, Macro::Map | Macro::Filter);
                    let _ = write!(self.out, "(tg_iter({ordered}, ");
                    self.expr(range);
                    self.push(")");
                } else {
                    self.push("(");
                    self.expr(range);
                }
                let _ = write!(self.out, ").{name}({var}, ");
                self.locals.push(var);
                self.expr(body);
                self.locals.pop();
                self.push(")");
            }
        }
    }
}
