//! The layering rules of docs/architecture.md, checked on the source text:
//! which module may name which. Every `src/**/*.rs` is scanned for the
//! `crate::`, `super::` and `self::` paths it uses (use trees, grouped ones
//! included, and inline paths such as attribute arguments), each resolved to
//! the file of the module it names. Comments and string literals are skipped,
//! so a doc link is not an import.
//!
//! `cargo test --test it architecture -- --nocapture` prints the figures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One scanned file and the module paths it references.
struct SourceFile {
    /// Relative to `src/`, with `/` separators.
    rel: String,
    refs: BTreeSet<Vec<String>>,
}

/// Every module of the crate, from its files and inline `mod x { .. }`
/// blocks, mapped to the file that holds it.
struct ModuleTree {
    /// Module path (without `crate`) → file relative to `src/`.
    files: BTreeMap<Vec<String>, String>,
}

impl ModuleTree {
    /// The file of the longest prefix of `path` that names a module.
    fn file_of(&self, path: &[String]) -> Option<&str> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.files.get(&path[..n]).map(String::as_str))
    }

    fn is_module(&self, path: &[String]) -> bool {
        self.files.contains_key(path)
    }
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path a file defines: `tokens/health.rs` → `[tokens, health]`,
/// `tokens/mod.rs` → `[tokens]`, `lib.rs` → `[]`.
fn file_module(rel: &str) -> Vec<String> {
    let stem = rel.strip_suffix(".rs").expect(".rs file");
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Source text without comments, string and char literals (each replaced by
/// a space), so only code remains.
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied().unwrap_or('\0');
        if c[i] == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if (c[i] == 'r' || (c[i] == 'b' && at(i + 1) == 'r'))
            && !at(i.wrapping_sub(1)).is_alphanumeric()
            && {
                let mut k = i + if c[i] == 'b' { 2 } else { 1 };
                while at(k) == '#' {
                    k += 1;
                }
                at(k) == '"'
            }
        {
            // Raw string: r"..", r#".."#, br"..".
            let mut k = i + if c[i] == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(k) == '#' {
                hashes += 1;
                k += 1;
            }
            k += 1;
            loop {
                if k >= c.len() {
                    break;
                }
                if c[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#') {
                    k += 1 + hashes;
                    break;
                }
                k += 1;
            }
            i = k;
            out.push(' ');
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(' ');
        } else if c[i] == '\'' {
            // A char literal ('a', '\n', '\u{..}'), or a lifetime ('a).
            if at(i + 1) == '\\' {
                let mut k = i + 3;
                while k < c.len() && c[k] != '\'' {
                    k += 1;
                }
                i = k + 1;
                out.push(' ');
            } else if at(i + 2) == '\'' {
                i += 3;
                out.push(' ');
            } else {
                out.push(c[i]);
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

fn tokenize(code: &str) -> Vec<Token> {
    let c: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if c[i].is_alphabetic() || c[i] == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(c[start..i].iter().collect()));
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            tokens.push(Token::PathSep);
            i += 2;
        } else if c[i].is_whitespace() {
            i += 1;
        } else if c[i].is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '.') {
                i += 1;
            }
        } else {
            tokens.push(Token::Punct(c[i]));
            i += 1;
        }
    }
    tokens
}

/// The paths a use tree names, each as its segments: `a::{b, c::{d, e}}` →
/// `a::b`, `a::c::d`, `a::c::e`. `self` in a group names the prefix itself.
fn use_tree(tokens: &[Token], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        match tokens.get(*i) {
            Some(Token::Ident(word)) if word == "as" => {
                *i += 2; // `as name`
                out.push(path);
                return;
            }
            Some(Token::Ident(word)) => {
                if word != "self" || path.is_empty() {
                    path.push(word.clone());
                }
                *i += 1;
            }
            Some(Token::PathSep) => *i += 1,
            Some(Token::Punct('{')) => {
                *i += 1;
                loop {
                    match tokens.get(*i) {
                        Some(Token::Punct('}')) => {
                            *i += 1;
                            return;
                        }
                        Some(Token::Punct(',')) => *i += 1,
                        None => return,
                        _ => use_tree(tokens, i, path.clone(), out),
                    }
                }
            }
            Some(Token::Punct('*')) => {
                *i += 1;
                out.push(path);
                return;
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

fn is_child(tree: &ModuleTree, here: &[String], name: &str) -> bool {
    let mut child = here.to_vec();
    child.push(name.to_string());
    tree.is_module(&child)
}

/// Resolves `crate`, `super`, `self` and a leading child-module name against
/// the module `here`; `None` for a path into another crate.
fn absolute(path: &[String], here: &[String], tree: &ModuleTree) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" | "super" => here.to_vec(),
        _ if is_child(tree, here, first) => {
            return Some(here.iter().chain(path).cloned().collect());
        }
        _ => return None,
    };
    let mut rest = &path[1..];
    if first == "super" {
        base.pop();
    }
    while rest.first().is_some_and(|s| s == "super") {
        base.pop();
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The module paths one file references, and the inline modules it declares.
fn scan(rel: &str, text: &str, tree: &mut ModuleTree, resolve: bool) -> BTreeSet<Vec<String>> {
    let tokens = tokenize(&strip(text));
    let file_mod = file_module(rel);
    // Inline modules open at a brace depth: (depth, module path).
    let mut stack: Vec<(usize, Vec<String>)> = vec![(0, file_mod.clone())];
    let mut depth = 0usize;
    let mut refs = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        let here = stack.last().expect("file module").1.clone();
        match &tokens[i] {
            Token::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Token::Punct('}') => {
                if stack.len() > 1 && stack.last().expect("inline module").0 == depth {
                    stack.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Punct('{'))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    let mut path = here.clone();
                    path.push(name.clone());
                    tree.files.insert(path.clone(), rel.to_string());
                    depth += 1;
                    stack.push((depth, path));
                    i += 3;
                } else {
                    i += 1;
                }
            }
            Token::Ident(word) if word == "use" => {
                i += 1;
                let mut paths = Vec::new();
                use_tree(&tokens, &mut i, Vec::new(), &mut paths);
                if resolve {
                    refs.extend(paths.iter().filter_map(|p| absolute(p, &here, tree)));
                }
            }
            Token::Ident(word)
                if tokens.get(i + 1) == Some(&Token::PathSep)
                    && !matches!(tokens.get(i.wrapping_sub(1)), Some(Token::PathSep))
                    && (matches!(word.as_str(), "crate" | "super" | "self")
                        || is_child(tree, &here, word)) =>
            {
                let mut path = vec![word.clone()];
                i += 1;
                while tokens.get(i) == Some(&Token::PathSep) {
                    match tokens.get(i + 1) {
                        Some(Token::Ident(seg)) => {
                            path.push(seg.clone());
                            i += 2;
                        }
                        _ => break,
                    }
                }
                if resolve {
                    refs.extend(absolute(&path, &here, tree));
                }
            }
            _ => i += 1,
        }
    }
    refs
}

/// Every library file (the binary's `main.rs` is another crate) with the
/// files it references, self-references dropped.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = src_dir();
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let mut texts = Vec::new();
    let mut tree = ModuleTree {
        files: BTreeMap::new(),
    };
    for path in paths {
        let rel = path
            .strip_prefix(&src)
            .expect("under src/")
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source is UTF-8");
        tree.files.insert(file_module(&rel), rel.clone());
        texts.push((rel, text));
    }
    // First pass: inline modules, so paths into them resolve to their file.
    for (rel, text) in &texts {
        scan(rel, text, &mut tree, false);
    }
    let files: Vec<SourceFile> = texts
        .iter()
        .map(|(rel, text)| SourceFile {
            rel: rel.clone(),
            refs: scan(rel, text, &mut tree, true),
        })
        .collect();
    files
        .iter()
        .map(|f| {
            let targets = f
                .refs
                .iter()
                .filter_map(|p| tree.file_of(p))
                .filter(|t| *t != f.rel && *t != "lib.rs")
                .map(str::to_string)
                .collect();
            (f.rel.clone(), targets)
        })
        .collect()
}

/// The top-level module a file belongs to: `tokens/health.rs` → `tokens`.
fn top(rel: &str) -> &str {
    rel.split('/')
        .next()
        .expect("non-empty path")
        .trim_end_matches(".rs")
}

/// Strongly connected components (Tarjan), largest first.
fn sccs(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().expect("v is on the stack");
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    let mut out = s.out;
    out.sort_by_key(|c| std::cmp::Reverse(c.len()));
    out
}

/// The references from files matching `from` to files matching `forbidden`,
/// as `file -> target`.
fn violations(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: impl Fn(&str) -> bool,
    forbidden: impl Fn(&str) -> bool,
) -> Vec<String> {
    graph
        .iter()
        .filter(|(f, _)| from(f))
        .flat_map(|(f, targets)| {
            targets
                .iter()
                .filter(|t| forbidden(t))
                .map(move |t| format!("{f} -> {t}"))
        })
        .collect()
}

/// Figures of the import graph, outside the simulator.
struct Figures {
    module_cycles: Vec<Vec<String>>,
    /// Module edges, and the file imports behind them, inside a module cycle.
    upward_module_edges: usize,
    upward_file_imports: usize,
    file_cycles: Vec<Vec<String>>,
}

fn figures(graph: &BTreeMap<String, BTreeSet<String>>) -> Figures {
    let outside_simulator = |f: &str| top(f) != "simulator";
    let files: BTreeMap<String, BTreeSet<String>> = graph
        .iter()
        .filter(|(f, _)| outside_simulator(f))
        .map(|(f, ts)| {
            let ts = ts
                .iter()
                .filter(|t| outside_simulator(t))
                .cloned()
                .collect();
            (f.clone(), ts)
        })
        .collect();
    let mut modules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (f, targets) in &files {
        let entry = modules.entry(top(f).to_string()).or_default();
        entry.extend(
            targets
                .iter()
                .map(|t| top(t).to_string())
                .filter(|t| t != top(f)),
        );
    }
    let module_cycles: Vec<Vec<String>> =
        sccs(&modules).into_iter().filter(|c| c.len() > 1).collect();
    let cycle_of = |m: &str| module_cycles.iter().position(|c| c.iter().any(|x| x == m));
    let in_one_cycle = |a: &str, b: &str| cycle_of(a).is_some() && cycle_of(a) == cycle_of(b);
    let upward_module_edges = modules
        .iter()
        .flat_map(|(a, bs)| bs.iter().map(move |b| (a, b)))
        .filter(|(a, b)| in_one_cycle(a, b))
        .count();
    let upward_file_imports = files
        .iter()
        .flat_map(|(f, ts)| ts.iter().map(move |t| (f, t)))
        .filter(|(f, t)| top(f) != top(t) && in_one_cycle(top(f), top(t)))
        .count();
    let file_cycles = sccs(&files).into_iter().filter(|c| c.len() > 1).collect();
    Figures {
        module_cycles,
        upward_module_edges,
        upward_file_imports,
        file_cycles,
    }
}

fn print_figures(graph: &BTreeMap<String, BTreeSet<String>>, f: &Figures) {
    println!("files scanned: {}", graph.len());
    println!(
        "module-level cycles (top-level modules, simulator excluded): {}",
        f.module_cycles.len()
    );
    for c in &f.module_cycles {
        println!("  {} modules: {}", c.len(), c.join(", "));
    }
    println!(
        "imports inside a module cycle: {} module edges, {} file imports",
        f.upward_module_edges, f.upward_file_imports
    );
    println!(
        "file-level cycles: {}, largest {} files",
        f.file_cycles.len(),
        f.file_cycles.first().map_or(0, Vec::len)
    );
    for c in &f.file_cycles {
        println!("  {} files: {}", c.len(), c.join(", "));
    }
}

#[test]
fn only_the_http_layer_cli_and_app_import_api() {
    let outside = |f: &str| !matches!(top(f), "api" | "app" | "cli");
    let found = violations(&graph(), outside, |t| top(t) == "api");
    assert!(found.is_empty(), "imports of api/ from below: {found:#?}");
}

#[test]
fn providers_and_insights_do_not_import_the_store() {
    let from = |f: &str| matches!(top(f), "providers" | "insights");
    let found = violations(&graph(), from, |t| top(t) == "store");
    assert!(found.is_empty(), "imports of store/: {found:#?}");
}

#[test]
fn the_domain_imports_only_itself_and_leaf_modules() {
    let from = |f: &str| top(f) == "domain";
    let allowed = |t: &str| matches!(top(t), "domain" | "secret" | "clock");
    let found = violations(&graph(), from, |t| !allowed(t));
    assert!(found.is_empty(), "imports from domain/: {found:#?}");
}

/// Figures measured (simulator excluded) before and after the layering of
/// issue 11:
/// - before: one module cycle of 9 modules (api, config, insights, metrics,
///   notify, providers, scheduler, store, tokens) with 33 module edges and
///   123 file imports inside it; the largest file cycle had 50 files across
///   those 9 modules.
/// - after: no module cycle. The file cycles left lie inside one module: a
///   `mod.rs` that declares its children and re-exports their items, which
///   they name through `super::` (the largest 7 files, `config/`).
#[test]
fn no_import_cycle_crosses_a_module() {
    let graph = graph();
    let f = figures(&graph);
    print_figures(&graph, &f);
    assert!(
        f.module_cycles.is_empty(),
        "a module cycle: {:?}",
        f.module_cycles
    );
    let crossing: Vec<&Vec<String>> = f
        .file_cycles
        .iter()
        .filter(|c| c.iter().any(|x| top(x) != top(&c[0])))
        .collect();
    assert!(
        crossing.is_empty(),
        "a file cycle spans modules: {crossing:?}"
    );
    let largest = f.file_cycles.first().map_or(0, Vec::len);
    assert!(
        largest <= 7,
        "the largest file cycle grew to {largest} files"
    );
}

#[test]
fn the_scanner_reads_grouped_uses_super_and_inline_paths() {
    let mut tree = ModuleTree {
        files: BTreeMap::new(),
    };
    for rel in [
        "lib.rs", "a/mod.rs", "a/b.rs", "a/c.rs", "a/g.rs", "d.rs", "e.rs", "f.rs",
    ] {
        tree.files.insert(file_module(rel), rel.to_string());
    }
    let text = r##"
        //! Mentions crate::f in a comment, which is no import.
        use crate::{d::{X, Y}, e};
        use super::c::Z;
        mod tests { use super::super::g::W; }
        #[attr(response = crate::e::R)]
        fn g() { let _ = "crate::f"; let _ = '"'; let _ = r#"crate::f"#; }
    "##;
    let refs = scan("a/b.rs", text, &mut tree, true);
    let files: BTreeSet<&str> = refs.iter().filter_map(|p| tree.file_of(p)).collect();
    // `super::super` from the inline `tests` module is `a`, not the root.
    assert_eq!(files, BTreeSet::from(["a/c.rs", "a/g.rs", "d.rs", "e.rs"]));
}
