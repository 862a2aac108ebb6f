//! The expressions the property generates: a small typed grammar ([`Gen`])
//! whose children mostly have the type their operator expects.

use proptest::prelude::*;
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub(super) enum Lit {
    Int(i64),
    UInt(u64),
    Double(f64),
    Nan,
    Inf,
    Str(&'static str),
    Bool(bool),
    Null,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Fun {
    Size,
    SizeMember,
    LowerAscii,
    UpperAscii,
    Trim,
    Int,
    UInt,
    Double,
    String,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum StrFun {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Macro {
    All,
    Exists,
    ExistsOne,
    Map,
    Filter,
}

#[derive(Clone, Debug)]
pub(super) enum E {
    Lit(Lit),
    /// A path from `args` or `result`, written as is.
    Path(&'static str),
    /// The innermost-but-n comprehension variable (`args.a` outside any).
    Local(usize),
    Has(Box<E>, &'static str),
    Select(Box<E>, &'static str),
    Not(Box<E>),
    Neg(Box<E>),
    Arith(Arith, Box<E>, Box<E>),
    Cmp(Cmp, Box<E>, Box<E>),
    And(Box<E>, Box<E>),
    Or(Box<E>, Box<E>),
    In(Box<E>, Box<E>),
    Cond(Box<E>, Box<E>, Box<E>),
    Call(Fun, Box<E>),
    StrCall(StrFun, Box<E>, Box<E>),
    Index(Box<E>, Box<E>),
    List(Vec<E>),
    /// Distinct keys: a duplicate key is a compile error in both (pinned
    /// among the fixed expressions).
    Map(Vec<(&'static str, E)>),
    Macro(Macro, Box<E>, Box<E>),
    /// `(s).indexOf(x)`.
    IndexOf(Box<E>, Box<E>),
    /// `(s).replace(from, to)`.
    Replace(Box<E>, Box<E>, Box<E>),
    /// `(s).split(separator)`.
    Split(Box<E>, Box<E>),
    /// `(list).join(separator)`, or `(list).join()` without one.
    Join(Box<E>, Option<Box<E>>),
    /// `(s).matches('pattern')`: a literal pattern, as Tollgate requires.
    Matches(Box<E>, &'static str),
}

/// The patterns `matches()` is generated with (RE2 syntax, which both sides
/// run with the `regex` crate).
pub(super) const PATTERNS: [&str; 8] = ["^a", "l+", "[0-9]+$", "^$", "(?i)hello", "ö", "a|b", "^-?[0-9]+(\\.[0-9]+)?$"];

pub(super) const STRINGS: [&str; 19] = [
    "",
    "a b ",
    "\tx\n",
    ",a,,b",
    "a",
    "x",
    "k",
    "Hello",
    "hello",
    "HÉllo wörld",
    "abc",
    "bc",
    "5",
    "-7",
    "2.5",
    "NaN",
    "1e3",
    " 5",
    "9223372036854775808",
];
const FIELDS: [&str; 8] = ["a", "b", "s", "items", "m", "k", "x", "zz"];
const PATHS: [&str; 16] = [
    "args.a",
    "args.b",
    "args.s",
    "args.items",
    "args.m",
    "args.m.k",
    "args.n",
    "args.zz",
    "result.x",
    "result.y",
    "result.s",
    "result.items",
    "result.zz",
    "args",
    "result",
    "args.items",
];

/// The static type a generated subexpression is meant to have. Children
/// have the type their operator wants most of the time (so that most cases
/// evaluate to a value rather than fail early), and any type the rest of the
/// time (so that type errors are exercised too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Ty {
    Bool,
    Int,
    Double,
    Str,
    /// A list, mostly of ints.
    List,
    Any,
}

const TYPES: [Ty; 5] = [Ty::Bool, Ty::Int, Ty::Double, Ty::Str, Ty::List];

/// How deep the generated trees go (the reference renderings nest about
/// three times deeper).
const DEPTH: u32 = 4;

fn int_lit() -> BoxedStrategy<Lit> {
    prop_oneof![
        8 => (-10i64..=10).prop_map(Lit::Int),
        1 => prop::sample::select(vec![0i64, 1, -1, 100, 800, i64::MAX, i64::MIN]).prop_map(Lit::Int),
        // Neighbours beyond 2^53, equal as doubles.
        1 => prop::sample::select(vec![9_007_199_254_740_993i64, 9_007_199_254_740_992, -9_007_199_254_740_993])
            .prop_map(Lit::Int),
        1 => prop::sample::select(vec![0u64, 1, 5, u64::MAX, 9_007_199_254_740_993, 9_007_199_254_740_992])
            .prop_map(Lit::UInt),
    ]
    .boxed()
}

fn double_lit() -> BoxedStrategy<Lit> {
    prop_oneof![
        10 => prop::sample::select(vec![0.0f64, 0.5, 2.5, -1.5, 1.0, 100.0, 800.0, -0.0])
            .prop_map(Lit::Double),
        2 => prop::sample::select(vec![1e300, 9.21e18, 1.81e19, 9_007_199_254_740_992.0]).prop_map(Lit::Double),
        1 => Just(Lit::Nan),
        1 => Just(Lit::Inf),
    ]
    .boxed()
}

fn leaf(ty: Ty) -> BoxedStrategy<E> {
    let path = |paths: Vec<&'static str>| prop::sample::select(paths).prop_map(E::Path);
    match ty {
        Ty::Bool => prop_oneof![
            2 => any::<bool>().prop_map(|b| E::Lit(Lit::Bool(b))),
            1 => prop::sample::select(vec!["args.a", "args.zz", "args.m.k", "result.x"]).prop_map(|p| {
                let (target, field) = p.rsplit_once('.').unwrap_or(("args", "a"));
                let target: &'static str = match target { "args" => "args", "result" => "result", _ => "args.m" };
                E::Has(Box::new(E::Path(target)), field)
            }),
        ]
        .boxed(),
        // `Local` is the innermost comprehension variable (an element of an
        // int list) or, outside any comprehension, `args.a`: an int either way.
        Ty::Int => prop_oneof![
            4 => int_lit().prop_map(E::Lit),
            3 => path(vec!["args.a", "result.x", "args.n"]),
            4 => Just(E::Local(0)),
            1 => Just(E::Local(1)),
        ]
        .boxed(),
        Ty::Double => prop_oneof![
            3 => double_lit().prop_map(E::Lit),
            2 => path(vec!["args.b", "result.y"]),
        ]
        .boxed(),
        Ty::Str => prop_oneof![
            3 => prop::sample::select(STRINGS.to_vec()).prop_map(|s| E::Lit(Lit::Str(s))),
            2 => path(vec!["args.s", "result.s", "args.m.k"]),
        ]
        .boxed(),
        Ty::List => prop_oneof![
            3 => path(vec!["args.items", "result.items"]),
            1 => prop::collection::vec(int_lit().prop_map(E::Lit), 0..4).prop_map(E::List),
        ]
        .boxed(),
        Ty::Any => prop_oneof![
            4 => prop::sample::select(TYPES.to_vec()).prop_flat_map(leaf),
            1 => prop::sample::select(PATHS.to_vec()).prop_map(E::Path),
            1 => Just(E::Lit(Lit::Null)),
        ]
        .boxed(),
    }
}

/// An integer near 2^53: a literal (int or uint), `args.n`, or one of
/// those plus one.
fn big_int() -> BoxedStrategy<E> {
    let base = prop_oneof![
        3 => prop::sample::select(vec![9_007_199_254_740_993i64, 9_007_199_254_740_992, -9_007_199_254_740_993])
            .prop_map(|i| E::Lit(Lit::Int(i))),
        1 => prop::sample::select(vec![9_007_199_254_740_993u64, 9_007_199_254_740_992]).prop_map(|u| E::Lit(Lit::UInt(u))),
        2 => Just(E::Path("args.n")),
    ];
    prop_oneof![
        3 => base.clone(),
        1 => base.prop_map(|b| E::Arith(Arith::Add, Box::new(b), Box::new(E::Lit(Lit::Int(1))))),
    ]
    .boxed()
}

struct Gen {
    cache: HashMap<(Ty, u32), BoxedStrategy<E>>,
}

impl Gen {
    /// A subexpression of type `ty` at most `depth` operators deep.
    fn of(&mut self, ty: Ty, depth: u32) -> BoxedStrategy<E> {
        if let Some(s) = self.cache.get(&(ty, depth)) {
            return s.clone();
        }
        let s = if depth == 0 {
            leaf(ty)
        } else if ty == Ty::Any {
            let options: Vec<BoxedStrategy<E>> = TYPES.iter().map(|t| self.of(*t, depth)).collect();
            prop_oneof![
                8 => prop::sample::select((0..options.len()).collect::<Vec<_>>())
                    .prop_flat_map(move |i| options[i].clone()),
                1 => self.map_literal(depth - 1),
                1 => self.of(Ty::Any, depth - 1).prop_flat_map(|t| {
                    prop::sample::select(FIELDS.to_vec()).prop_map(move |f| E::Select(Box::new(t.clone()), f))
                }),
            ]
            .boxed()
        } else {
            prop_oneof![2 => leaf(ty), 5 => self.compound(ty, depth - 1)].boxed()
        };
        self.cache.insert((ty, depth), s.clone());
        s
    }

    /// A child of type `ty`, sometimes of any type.
    fn child(&mut self, ty: Ty, depth: u32) -> BoxedStrategy<Box<E>> {
        prop_oneof![12 => self.of(ty, depth), 1 => self.of(Ty::Any, depth)].prop_map(Box::new).boxed()
    }

    fn map_literal(&mut self, depth: u32) -> BoxedStrategy<E> {
        let values = self.of(Ty::Any, depth);
        prop::sample::subsequence(vec!["a", "b", "k", "x"], 0..4)
            .prop_flat_map(move |keys| {
                prop::collection::vec(values.clone(), keys.len())
                    .prop_map(move |values| E::Map(keys.clone().into_iter().zip(values).collect()))
            })
            .boxed()
    }

    fn arith(&mut self, ops: Vec<Arith>, l: Ty, r: Ty, d: u32) -> BoxedStrategy<E> {
        (prop::sample::select(ops), self.child(l, d), self.child(r, d)).prop_map(|(o, l, r)| E::Arith(o, l, r)).boxed()
    }

    fn cmp(&mut self, ops: Vec<Cmp>, ty: Ty, d: u32) -> BoxedStrategy<E> {
        (prop::sample::select(ops), self.child(ty, d), self.child(ty, d)).prop_map(|(o, l, r)| E::Cmp(o, l, r)).boxed()
    }

    fn cond(&mut self, ty: Ty, d: u32) -> BoxedStrategy<E> {
        (self.child(Ty::Bool, d), self.child(ty, d), self.child(ty, d)).prop_map(|(c, t, o)| E::Cond(c, t, o)).boxed()
    }

    fn call(&mut self, f: Fun, ty: Ty, d: u32) -> BoxedStrategy<E> {
        self.child(ty, d).prop_map(move |a| E::Call(f, a)).boxed()
    }

    fn macro_over(&mut self, kinds: Vec<Macro>, body: Ty, d: u32) -> BoxedStrategy<E> {
        let range = prop_oneof![
            8 => self.child(Ty::List, d),
            1 => Just(Box::new(E::Path("args.m"))),
        ];
        (prop::sample::select(kinds), range, self.child(body, d)).prop_map(|(m, r, b)| E::Macro(m, r, b)).boxed()
    }

    fn compound(&mut self, ty: Ty, d: u32) -> BoxedStrategy<E> {
        use Arith::*;
        use Cmp::*;
        match ty {
            Ty::Bool => {
                let str_fun = prop::sample::select(vec![StrFun::Contains, StrFun::StartsWith, StrFun::EndsWith]);
                prop_oneof![
                    4 => self.cmp(vec![Eq, Ne, Lt, Le, Gt, Ge], Ty::Int, d),
                    2 => self.cmp(vec![Eq, Ne, Lt, Le, Gt, Ge], Ty::Double, d),
                    2 => self.cmp(vec![Eq, Ne, Lt, Le, Gt, Ge], Ty::Str, d),
                    1 => self.cmp(vec![Eq, Ne], Ty::List, d),
                    1 => self.cmp(vec![Eq, Ne], Ty::Any, d),
                    2 => (self.child(Ty::Str, d), prop::sample::select(PATTERNS.to_vec()))
                        .prop_map(|(a, pattern)| E::Matches(a, pattern)),
                    2 => (self.child(Ty::Bool, d), self.child(Ty::Bool, d)).prop_map(|(l, r)| E::And(l, r)),
                    2 => (self.child(Ty::Bool, d), self.child(Ty::Bool, d)).prop_map(|(l, r)| E::Or(l, r)),
                    1 => self.child(Ty::Bool, d).prop_map(E::Not),
                    2 => (self.child(Ty::Int, d), self.child(Ty::List, d)).prop_map(|(l, r)| E::In(l, r)),
                    1 => (self.child(Ty::Str, d), prop_oneof![Just(Box::new(E::Path("args.m"))), self.child(Ty::Any, d)])
                        .prop_map(|(l, r)| E::In(l, r)),
                    2 => (str_fun, self.child(Ty::Str, d), self.child(Ty::Str, d)).prop_map(|(f, a, x)| E::StrCall(f, a, x)),
                    1 => (self.child(Ty::Any, d), prop::sample::select(FIELDS.to_vec())).prop_map(|(t, f)| E::Has(t, f)),
                    3 => self.macro_over(vec![Macro::All, Macro::Exists, Macro::ExistsOne], Ty::Bool, d),
                    // Integers beyond 2^53, where f64 cannot tell neighbours apart.
                    1 => (prop::sample::select(vec![Eq, Ne, Lt, Ge]), big_int(), big_int())
                        .prop_map(|(o, l, r)| E::Cmp(o, Box::new(l), Box::new(r))),
                    // `10 / (x - k) > m`: fails on the element equal to k.
                    1 => (prop::sample::select(vec![Macro::All, Macro::Exists]), self.child(Ty::List, d), 0i64..4, -3i64..3)
                        .prop_map(|(m, range, k, bound)| {
                            let int = |i| Box::new(E::Lit(Lit::Int(i)));
                            let shifted = Box::new(E::Arith(Arith::Sub, Box::new(E::Local(0)), int(k)));
                            let body = E::Cmp(Cmp::Gt, Box::new(E::Arith(Arith::Div, int(10), shifted)), int(bound));
                            E::Macro(m, range, Box::new(body))
                        }),
                    1 => self.cond(Ty::Bool, d),
                ]
                .boxed()
            }
            Ty::Int => prop_oneof![
                5 => self.arith(vec![Add, Sub, Mul, Div, Mod], Ty::Int, Ty::Int, d),
                1 => self.child(Ty::Int, d).prop_map(E::Neg),
                2 => self.call(Fun::Size, Ty::Str, d),
                1 => self.call(Fun::SizeMember, Ty::List, d),
                1 => (self.child(Ty::Str, d), self.child(Ty::Str, d)).prop_map(|(a, x)| E::IndexOf(a, x)),
                1 => self.call(Fun::Int, Ty::Double, d),
                1 => self.call(Fun::Int, Ty::Str, d),
                1 => self.call(Fun::UInt, Ty::Int, d),
                2 => (self.child(Ty::List, d), (0i64..3).prop_map(|i| Box::new(E::Lit(Lit::Int(i)))))
                    .prop_map(|(c, i)| E::Index(c, i)),
                1 => (self.child(Ty::List, d), prop::sample::select(vec![0.0f64, 1.0, 0.5]))
                    .prop_map(|(c, i)| E::Index(c, Box::new(E::Lit(Lit::Double(i))))),
                1 => self.cond(Ty::Int, d),
            ]
            .boxed(),
            Ty::Double => prop_oneof![
                4 => self.arith(vec![Add, Sub, Mul, Div], Ty::Double, Ty::Double, d),
                1 => self.arith(vec![Add, Sub, Mul, Div], Ty::Int, Ty::Double, d),
                1 => self.arith(vec![Add, Mul], Ty::Double, Ty::Int, d),
                1 => self.child(Ty::Double, d).prop_map(E::Neg),
                2 => self.call(Fun::Double, Ty::Int, d),
                1 => self.call(Fun::Double, Ty::Str, d),
                1 => self.cond(Ty::Double, d),
            ]
            .boxed(),
            Ty::Str => prop_oneof![
                3 => self.arith(vec![Add], Ty::Str, Ty::Str, d),
                2 => self.call(Fun::LowerAscii, Ty::Str, d),
                1 => self.call(Fun::UpperAscii, Ty::Str, d),
                1 => self.call(Fun::Trim, Ty::Str, d),
                1 => (self.child(Ty::Str, d), self.child(Ty::Str, d), self.child(Ty::Str, d))
                    .prop_map(|(a, from, to)| E::Replace(a, from, to)),
                1 => (self.child(Ty::Str, d), self.child(Ty::Str, d), self.child(Ty::Str, d))
                    .prop_map(|(a, sep, joiner)| E::Join(Box::new(E::Split(a, sep)), Some(joiner))),
                1 => (self.child(Ty::List, d), proptest::option::of(self.child(Ty::Str, d)))
                    .prop_map(|(list, sep)| E::Join(list, sep)),
                1 => self.call(Fun::String, Ty::Int, d),
                1 => self.call(Fun::String, Ty::Double, d),
                1 => self.call(Fun::String, Ty::Any, d),
                1 => self.cond(Ty::Str, d),
            ]
            .boxed(),
            Ty::List => {
                let item = self.of(Ty::Int, d);
                prop_oneof![
                    2 => prop::collection::vec(item, 0..4).prop_map(E::List),
                    1 => (self.child(Ty::Str, d), self.child(Ty::Str, d)).prop_map(|(a, sep)| E::Split(a, sep)),
                    1 => self.arith(vec![Add], Ty::List, Ty::List, d),
                    2 => self.macro_over(vec![Macro::Map], Ty::Int, d),
                    2 => self.macro_over(vec![Macro::Filter], Ty::Bool, d),
                    1 => self.cond(Ty::List, d),
                ]
                .boxed()
            }
            Ty::Any => self.of(Ty::Any, d),
        }
    }
}

/// A whole generated expression: usually a bool (a rule), sometimes anything.
pub(super) fn expr() -> BoxedStrategy<E> {
    let mut generator = Gen { cache: HashMap::new() };
    prop_oneof![3 => generator.of(Ty::Bool, DEPTH), 2 => generator.of(Ty::Any, DEPTH)].boxed()
}
