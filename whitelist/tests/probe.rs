#![allow(missing_docs)]
use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Top { a: Vec<Spanned<String>>, #[serde(default)] b: Option<Spanned<String>> }

#[test]
fn probe() {
    let mut opts = serde_saphyr::Options::default(); opts.with_snippet = false;
    for src in ["a: [x, 012345678901, true, 1.50]\nb: c\n", "a: [x]\nzz: 1\n", "a: [x]\na: [y]\n", "a: [x, [y]]\n", "a: [x\n", "a:\n  - x\n  - \n", "a: [\"\"]\nb: ~\n"] {
        let r: Result<Top, _> = serde_saphyr::from_str_with_options(src, opts.clone());
        match r {
            Ok(t) => println!("OK {:?}", t),
            Err(e) => { let l = e.location(); println!("ERR {e} | {:?} | {:?}", l.map(|l| (l.line(), l.column())), e.without_snippet()); }
        }
    }
    panic!("show");
}
