//! The architecture, checked: dependencies between the crate's files point one way (DESIGN.md,
//! "Layout"). A newcomer reads the tree top down; that only works if nothing below reaches up and
//! no two files lean on each other, and a rule nobody checks erodes one import at a time.
//!
//! The test reads every `src/**/*.rs` reachable from `lib.rs` and `main.rs` through `mod`
//! declarations, strips comments and string literals, and collects each file's references to
//! other modules of the crate: `use` trees (groups, `self`, globs), inline paths starting with
//! `crate::`, `self::`, `super::` (resolved from the module the path sits in, inline modules
//! included) or a child module's name, and `interop_sim::` in the binary. Code under
//! `#[cfg(test)]` is left out: it is not part of the product, and a unit test may well drive its
//! module through the module's front door. A reference resolves to the file that defines what it
//! names: its longest module prefix, followed through `pub use` re-exports. It then fails on
//! - an import circle: two or more files that reach each other (`mod` declarations alone are
//!   not references, nor is a file's use of the module it sits in: see [`is_ancestor`]);
//! - a file importing a top-level module in a layer above its own, or a sibling in its own
//!   layer ([`LAYERS`]).
//!
//! No compiler involvement: a `macro_rules!` body or a path assembled in a macro would escape it.
//! The crate has none that name modules today.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate's layers, top to bottom (the README's "Where things are" shows the same tree). A
/// file may use its own top-level module and any module in a lower layer; modules in one layer do
/// not use each other. `main` is the binary: `src/main.rs` and every module it declares.
///
/// Read downwards: the command line drives everything and nothing depends on it; `calibrate`
/// times the crypto with fixtures borrowed from the benches and the live transport, and
/// `fuzzing` holds the decoders' properties that the fuzz targets and the property tests share; the drivers
/// (a bench, a live run, a shrink, a sweep) run the simulator or the nodes and draw reports; `sim` builds the
/// world and `report` draws the results, neither knowing the other; faults, workload and nodes
/// are what the world is made of; `metrics` is the ledger every part writes to; `directory`
/// (who is who) and `scenario` (the validated input) are read by all of those; below them the
/// self-contained parts (link models, the Signal protocol, what crosses the wire, containers),
/// and at the bottom `engine`, which knows nothing of messaging.
pub const LAYERS: &[&[&str]] = &[
    &["main"],
    &["calibrate", "fuzzing"],
    &["bench", "live", "planner", "shrink", "sweep"],
    &["sim", "report"],
    &["faults", "workload"],
    &["nodes"],
    &["metrics"],
    &["directory", "scenario"],
    &["net", "e2ee", "mls", "wire", "collections"],
    &["engine"],
];

/// A file's reference to another module, for the failure message.
#[derive(Clone, Debug)]
struct Reference {
    line: usize,
    path: String,
    /// A `pub use`: part of the file's face, not of its work. It counts for the layers (a file
    /// does not hand out what it may not use) and not for circles (a `mod.rs` naming its
    /// children's items is the usual way in, and paths through it are followed to the file that
    /// defines the item).
    reexport: bool,
}

/// Which crate a file belongs to: the two roots share `src/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Crate {
    Lib,
    Bin,
}

/// The crate's files, and the file each module path lives in (a file's own module and its inline
/// modules).
struct Tree {
    files: Vec<File>,
    modules: BTreeMap<(Crate, Vec<String>), usize>,
}

/// One source file: its crate, module path and the references found in it.
struct File {
    rel: String,
    krate: Crate,
    module: Vec<String>,
    refs: Vec<(Crate, Vec<String>, Reference)>,
    /// Items defined at the file's top level, and names handed out by `pub use` (one by one,
    /// and whole modules by glob), so that a path through a re-export reaches the defining file.
    defines: BTreeSet<String>,
    reexports: BTreeMap<String, (Crate, Vec<String>)>,
    globs: Vec<(Crate, Vec<String>)>,
}

#[test]
fn no_import_circles_and_no_import_upward() {
    let src = crate::root().join("src");
    let tree = read_tree(&src);
    let files = &tree.files;
    let graph = Graph::build(&tree);
    let names: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
    let mut problems = Vec::new();
    let uses: Vec<(usize, usize)> = (graph.uses().into_iter())
        .filter(|&(from, to)| !is_ancestor(&files[to], &files[from]))
        .collect();
    for (members, cycle) in find_cycles(names.len(), &uses) {
        let all: Vec<&str> = members.iter().map(|&f| names[f]).collect();
        problems.push(format!(
            "import circle among {} files ({}), for one: {}",
            all.len(),
            all.join(", "),
            graph.describe_cycle(&names, &cycle)
        ));
    }
    let tops: Vec<String> = files.iter().map(top_module).collect();
    let edges: Vec<(usize, usize)> = graph.evidence.keys().copied().collect();
    for (from, to) in layer_violations(&tops, &edges, LAYERS) {
        let r = &graph.evidence[&(from, to)];
        problems.push(format!(
            "{}:{} uses `{}` ({}), a module above it or beside it in LAYERS",
            names[from], r.line, r.path, names[to]
        ));
    }
    for top in tops.iter().collect::<BTreeSet<_>>() {
        if layer_of(top, LAYERS).is_none() && top != "lib" {
            problems.push(format!(
                "top-level module `{top}` is in no layer: add it to LAYERS"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} architecture problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    assert!(
        files.len() > 100,
        "read only {} files under src/",
        files.len()
    );
}

/// Whether `parent` is a module `child` sits in. A file's use of its parent (`super::`) does not
/// count towards circles: the parent (`mod.rs`) is the module's front and shared vocabulary, and a
/// child file often continues its parent's type (`impl Device` split by concern). The parent
/// using its children counts, and so does every use between siblings.
fn is_ancestor(parent: &File, child: &File) -> bool {
    parent.krate == child.krate
        && parent.module.len() < child.module.len()
        && child.module.starts_with(&parent.module)
}

/// The top-level module a file belongs to; every file of the binary is `main`.
fn top_module(file: &File) -> String {
    match (file.krate, file.module.first()) {
        (Crate::Bin, _) => "main".to_string(),
        (Crate::Lib, Some(top)) => top.clone(),
        (Crate::Lib, None) => "lib".to_string(),
    }
}

fn layer_of(top: &str, layers: &[&[&str]]) -> Option<usize> {
    layers.iter().position(|layer| layer.contains(&top))
}

/// Edges `(from, to)` that go up a layer or sideways within one. Modules in no layer are
/// reported separately.
fn layer_violations(
    tops: &[String],
    edges: &[(usize, usize)],
    layers: &[&[&str]],
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for &(from, to) in edges {
        if tops[from] == tops[to] || tops[to] == "lib" {
            continue;
        }
        let (Some(a), Some(b)) = (layer_of(&tops[from], layers), layer_of(&tops[to], layers))
        else {
            continue;
        };
        if b <= a {
            out.push((from, to));
        }
    }
    out
}

/// The file graph, with the first reference behind each edge.
struct Graph {
    evidence: BTreeMap<(usize, usize), Reference>,
}

impl Graph {
    fn build(tree: &Tree) -> Graph {
        let mut evidence: BTreeMap<(usize, usize), Reference> = BTreeMap::new();
        for (from, f) in tree.files.iter().enumerate() {
            for (krate, path, r) in &f.refs {
                let Some(to) = resolve(tree, *krate, path) else {
                    continue;
                };
                if to == from {
                    continue;
                }
                // Keep a real use over a re-export as the evidence of an edge.
                let e = evidence.entry((from, to)).or_insert_with(|| r.clone());
                if e.reexport && !r.reexport {
                    *e = r.clone();
                }
            }
        }
        Graph { evidence }
    }

    /// Edges of real uses, re-exports left out.
    fn uses(&self) -> Vec<(usize, usize)> {
        self.evidence
            .iter()
            .filter(|(_, r)| !r.reexport)
            .map(|(k, _)| *k)
            .collect()
    }

    fn describe_cycle(&self, names: &[&str], cycle: &[usize]) -> String {
        let mut out = Vec::new();
        for (k, &a) in cycle.iter().enumerate() {
            let b = cycle[(k + 1) % cycle.len()];
            let r = &self.evidence[&(a, b)];
            out.push(format!("{}:{} uses `{}` ->", names[a], r.line, r.path));
        }
        out.push(names[cycle[0]].to_string());
        out.join(" ")
    }
}

/// The file that defines what `path` names: the file of its longest module prefix, or, when the
/// next name is a re-export there, the file that re-export leads to. `None` if the path names no
/// module of the crate.
fn resolve(tree: &Tree, krate: Crate, path: &[String]) -> Option<usize> {
    let mut path = (krate, path.to_vec());
    let mut file = None;
    // Bounded: a re-export chain is short, and a re-export within one file would not progress.
    for _ in 0..16 {
        let n = (0..=path.1.len())
            .rev()
            .find(|&n| tree.modules.contains_key(&(path.0, path.1[..n].to_vec())))?;
        let here = tree.modules[&(path.0, path.1[..n].to_vec())];
        file = Some(here);
        let Some(name) = path.1.get(n) else { break };
        let Some((k, mut target)) = follow(&tree.files[here], tree, name) else {
            break;
        };
        target.extend_from_slice(&path.1[n + 1..]);
        path = (k, target);
    }
    file
}

/// Where a file's module sends `name`, if it re-exports it rather than defining it.
fn follow(f: &File, tree: &Tree, name: &str) -> Option<(Crate, Vec<String>)> {
    if let Some(target) = f.reexports.get(name) {
        return Some(target.clone());
    }
    if f.defines.contains(name) {
        return None;
    }
    f.globs.iter().find_map(|(k, g)| {
        let from = &tree.files[*tree.modules.get(&(*k, g.clone()))?];
        let found = from.defines.contains(name) || from.reexports.contains_key(name);
        found.then(|| (*k, [&g[..], &[name.to_string()]].concat()))
    })
}

/// Each strongly connected component of two or more files (Tarjan), with one shortest circle
/// through it for the message.
fn find_cycles(n: usize, edges: &[(usize, usize)]) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut next = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a != b {
            next[a].push(b);
        }
    }
    let components = strongly_connected(&next);
    let mut cycles = Vec::new();
    for comp in components.into_iter().filter(|c| c.len() > 1) {
        let inside: BTreeSet<usize> = comp.iter().copied().collect();
        let cycle = shortest_cycle_through(comp[0], &next, &inside);
        cycles.push((comp, cycle));
    }
    cycles.sort();
    cycles
}

/// Tarjan's algorithm, iterative so that a deep graph cannot overflow the stack.
fn strongly_connected(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = next.len();
    let (mut index, mut low) = (vec![usize::MAX; n], vec![0; n]);
    let (mut on_stack, mut stack, mut out) = (vec![false; n], Vec::new(), Vec::new());
    let mut counter = 0;
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work = vec![(start, 0usize)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 {
                index[v] = counter;
                low[v] = counter;
                counter += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = next[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                comp.sort();
                out.push(comp);
            }
        }
    }
    out
}

/// Breadth-first from `start` back to itself, staying inside its component.
fn shortest_cycle_through(
    start: usize,
    next: &[Vec<usize>],
    inside: &BTreeSet<usize>,
) -> Vec<usize> {
    let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &next[v] {
            if w == start {
                let mut cycle = vec![v];
                while let Some(&p) = came_from.get(cycle.last().unwrap()) {
                    cycle.push(p);
                }
                cycle.reverse();
                return cycle;
            }
            if inside.contains(&w) && !came_from.contains_key(&w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    unreachable!("a strongly connected component of two or more files has a circle");
}

/// Every file reachable from `lib.rs` and `main.rs` through `mod` declarations.
fn read_tree(src: &Path) -> Tree {
    let mut tree = Tree {
        files: Vec::new(),
        modules: BTreeMap::new(),
    };
    let mut todo = vec![
        (src.join("main.rs"), Crate::Bin, Vec::new()),
        (src.join("lib.rs"), Crate::Lib, Vec::new()),
    ];
    while let Some((path, krate, module)) = todo.pop() {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let scan = scan(&text, krate, &module);
        for child in &scan.child_files {
            let mut m = module.clone();
            m.push(child.clone());
            todo.push((child_file(&path, child), krate, m));
        }
        let index = tree.files.len();
        for inline in scan.inline_modules {
            tree.modules.insert((krate, inline), index);
        }
        tree.modules.insert((krate, module.clone()), index);
        let rel = path
            .strip_prefix(src.parent().unwrap_or(src))
            .unwrap_or(&path);
        tree.files.push(File {
            rel: rel.display().to_string(),
            krate,
            module,
            refs: scan.refs,
            defines: scan.defines,
            reexports: scan.reexports,
            globs: scan.globs,
        });
    }
    tree
}

/// Where `mod child;` in `parent` lives: `child.rs` or `child/mod.rs`, beside a crate root or a
/// `mod.rs`, else in the folder named after the parent file.
fn child_file(parent: &Path, child: &str) -> PathBuf {
    let name = parent
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let dir = match name {
        "lib.rs" | "main.rs" | "mod.rs" => {
            parent.parent().map(Path::to_path_buf).unwrap_or_default()
        }
        _ => parent.with_extension(""),
    };
    let flat = dir.join(format!("{child}.rs"));
    if flat.exists() {
        flat
    } else {
        dir.join(child).join("mod.rs")
    }
}

/// What one file declares and references.
#[derive(Default)]
struct Scan {
    refs: Vec<(Crate, Vec<String>, Reference)>,
    child_files: Vec<String>,
    inline_modules: Vec<Vec<String>>,
    defines: BTreeSet<String>,
    reexports: BTreeMap<String, (Crate, Vec<String>)>,
    globs: Vec<(Crate, Vec<String>)>,
}

/// A path as written, with the module it was written in.
struct RawPath {
    site: Vec<String>,
    segments: Vec<String>,
    line: usize,
    /// For a `pub use` at the file's top level: the name it hands out (`None` for a glob).
    reexport: Option<Option<String>>,
}

/// The module references in one file's text; `module` is the file's own module path.
fn scan(text: &str, krate: Crate, module: &[String]) -> Scan {
    let toks = lex(text);
    let mut out = Scan::default();
    let mut children: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    let mut raw = Vec::new();
    // Inline modules open at a brace depth and close when the depth falls below it; so does
    // the body of an item under `#[cfg(test)]`, marked as test code.
    let mut stack: Vec<(Vec<String>, usize, bool)> = vec![(module.to_vec(), 0, false)];
    let (mut depth, mut i, mut cfg_test) = (0usize, 0usize, false);
    let cfg_test_attr = ["#", "[", "cfg", "(", "test", ")", "]"].map(|t| match t {
        "cfg" | "test" => Tok::Ident(t.to_string()),
        _ => Tok::Other(t.chars().next().unwrap_or_default()),
    });
    while i < toks.len() {
        let site = stack.last().map(|s| s.0.clone()).unwrap_or_default();
        let in_test = stack.iter().any(|s| s.2);
        if toks[i..]
            .iter()
            .take(cfg_test_attr.len())
            .map(|t| &t.0)
            .eq(&cfg_test_attr)
        {
            cfg_test = true;
            i += cfg_test_attr.len();
            continue;
        }
        match (
            &toks[i].0,
            toks.get(i + 1).map(|t| &t.0),
            toks.get(i + 2).map(|t| &t.0),
        ) {
            (Tok::Open, ..) => {
                depth += 1;
                if std::mem::take(&mut cfg_test) {
                    stack.push((site, depth, true));
                }
            }
            (Tok::Semi, ..) => cfg_test = false,
            (Tok::Close, ..) => {
                depth = depth.saturating_sub(1);
                while stack.len() > 1 && stack.last().is_some_and(|s| s.1 > depth) {
                    stack.pop();
                }
            }
            (Tok::Ident(kw), Some(Tok::Ident(name)), Some(next)) if kw == "mod" => {
                children
                    .entry(site.clone())
                    .or_default()
                    .insert(name.clone());
                let mut inner = site.clone();
                inner.push(name.clone());
                let test = std::mem::take(&mut cfg_test) || in_test;
                match next {
                    // A test-only file (`#[cfg(test)] mod tests;`) is not read at all.
                    Tok::Semi if stack.len() == 1 && !test => out.child_files.push(name.clone()),
                    Tok::Open => {
                        out.inline_modules.push(inner.clone());
                        stack.push((inner, depth + 1, test));
                        depth += 1;
                        i += 1;
                    }
                    _ => {}
                }
                i += 2;
                continue;
            }
            (Tok::Ident(kw), ..) if kw == "use" => {
                let line = toks[i].1;
                let public = is_pub(&toks[..i]) && stack.len() == 1;
                let test = std::mem::take(&mut cfg_test) || in_test;
                i += 1;
                let mut paths = Vec::new();
                parse_use_tree(&toks, &mut i, Vec::new(), &mut paths);
                for (segments, name) in paths.into_iter().filter(|_| !test) {
                    let reexport = public.then_some(name);
                    raw.push(RawPath {
                        site: site.clone(),
                        segments,
                        line,
                        reexport,
                    });
                }
                continue;
            }
            (Tok::Ident(kw), Some(Tok::Ident(name)), _) if depth == 0 && is_item(kw) => {
                out.defines.insert(name.clone());
            }
            (Tok::Ident(first), Some(Tok::Sep), Some(Tok::Ident(_)))
                if i == 0 || toks[i - 1].0 != Tok::Sep =>
            {
                let line = toks[i].1;
                let mut segments = vec![first.clone()];
                i += 1;
                while let (Some(Tok::Sep), Some(Tok::Ident(s))) =
                    (toks.get(i).map(|t| &t.0), toks.get(i + 1).map(|t| &t.0))
                {
                    segments.push(s.clone());
                    i += 2;
                }
                if !in_test {
                    raw.push(RawPath {
                        site,
                        segments,
                        line,
                        reexport: None,
                    });
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    for p in raw {
        let Some((k, path)) = absolute(krate, &p, &children) else {
            continue;
        };
        match &p.reexport {
            Some(Some(name)) => drop(out.reexports.insert(name.clone(), (k, path.clone()))),
            Some(None) => out.globs.push((k, path.clone())),
            None => {}
        }
        let written = p.segments.join("::");
        let r = Reference {
            line: p.line,
            path: written,
            reexport: p.reexport.is_some(),
        };
        out.refs.push((k, path, r));
    }
    out
}

/// Whether the tokens before a `use` make it public: `pub`, `pub(crate)`, `pub(in path)`.
fn is_pub(before: &[(Tok, usize)]) -> bool {
    let mut k = before.len();
    if k > 0 && before[k - 1].0 == Tok::Other(')') {
        while k > 0 && before[k - 1].0 != Tok::Other('(') {
            k -= 1;
        }
        k = k.saturating_sub(1);
    }
    k > 0 && before[k - 1].0 == Tok::Ident("pub".to_string())
}

/// Keywords that define a named item a path can reach.
fn is_item(kw: &str) -> bool {
    let kws = [
        "struct", "enum", "fn", "trait", "type", "const", "static", "union", "mod",
    ];
    kws.contains(&kw)
}

/// A written path made absolute in its crate, or `None` if it names nothing of ours (`std::`,
/// a dependency, a local item).
fn absolute(
    krate: Crate,
    p: &RawPath,
    children: &BTreeMap<Vec<String>, BTreeSet<String>>,
) -> Option<(Crate, Vec<String>)> {
    let segs: Vec<String> = (p.segments.iter().enumerate())
        .filter(|(k, s)| *k == 0 || s.as_str() != "self")
        .map(|(_, s)| s.clone())
        .collect();
    let first = segs.first()?.as_str();
    match first {
        "crate" => Some((krate, segs[1..].to_vec())),
        "interop_sim" => Some((Crate::Lib, segs[1..].to_vec())),
        "self" => Some((krate, [&p.site[..], &segs[1..]].concat())),
        "super" => {
            let ups = segs.iter().take_while(|s| s.as_str() == "super").count();
            let base = &p.site[..p.site.len().checked_sub(ups)?];
            Some((krate, [base, &segs[ups..]].concat()))
        }
        _ if children.get(&p.site).is_some_and(|c| c.contains(first)) => {
            Some((krate, [&p.site[..], &segs[..]].concat()))
        }
        _ => None,
    }
}

/// Expands one `use` tree (`a::{b, c::d as e, f::*}`) into full paths, each with the name it
/// brings in (`None` for a glob); stops before the `,` or `}` that ends it, or past the `;`.
fn parse_use_tree(
    toks: &[(Tok, usize)],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix;
    let mut name = None;
    while let Some((tok, _)) = toks.get(*i) {
        match tok {
            Tok::Ident(s) if s == "as" => {
                if let Some((Tok::Ident(alias), _)) = toks.get(*i + 1) {
                    name = Some(alias.clone());
                }
                *i += 2;
                break;
            }
            Tok::Ident(s) => {
                path.push(s.clone());
                *i += 1;
            }
            Tok::Sep => *i += 1,
            Tok::Star => {
                *i += 1;
                out.push((path, None));
                return;
            }
            Tok::Open => {
                *i += 1;
                while let Some((tok, _)) = toks.get(*i) {
                    match tok {
                        Tok::Close => {
                            *i += 1;
                            return;
                        }
                        Tok::Comma => *i += 1,
                        _ => parse_use_tree(toks, i, path.clone(), out),
                    }
                }
                return;
            }
            Tok::Semi => {
                *i += 1;
                break;
            }
            _ => break,
        }
    }
    let last = path.iter().rev().find(|s| s.as_str() != "self").cloned();
    out.push((path, name.or(last)));
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Sep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other(char),
}

/// Tokens with their line, comments and string and char literals dropped: only what a path is
/// made of, and braces to follow inline modules.
fn lex(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let (mut out, mut i, mut line) = (Vec::new(), 0usize, 1usize);
    // Skips to just past the closing quote of a string body starting at `k`, with `hashes`
    // for a raw string.
    let skip_string = |mut k: usize, raw: Option<usize>, line: &mut usize| -> usize {
        while k < c.len() {
            match (c[k], raw) {
                ('\n', _) => *line += 1,
                ('\\', None) => {
                    if at(k + 1) == '\n' {
                        *line += 1;
                    }
                    k += 1;
                }
                ('"', None) => return k + 1,
                ('"', Some(n)) if (1..=n).all(|h| at(k + h) == '#') => return k + 1 + n,
                _ => {}
            }
            k += 1;
        }
        k
    };
    while i < c.len() {
        let ch = c[i];
        match ch {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == '/' => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut nest = 0;
                loop {
                    if i >= c.len() {
                        break;
                    } else if c[i] == '/' && at(i + 1) == '*' {
                        nest += 1;
                        i += 2;
                    } else if c[i] == '*' && at(i + 1) == '/' {
                        nest -= 1;
                        i += 2;
                        if nest == 0 {
                            break;
                        }
                    } else {
                        line += usize::from(c[i] == '\n');
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(i + 1, None, &mut line),
            '\'' if at(i + 1) == '\\' => {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            '\'' if at(i + 2) == '\'' => i += 3,
            ':' if at(i + 1) == ':' => {
                out.push((Tok::Sep, line));
                i += 2;
            }
            '{' | '}' | ',' | ';' | '*' => {
                let t = match ch {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    ';' => Tok::Semi,
                    _ => Tok::Star,
                };
                out.push((t, line));
                i += 1;
            }
            _ if ch.is_alphanumeric() || ch == '_' => {
                let start = i;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                let quoted = matches!(word.as_str(), "b" | "c" | "r" | "br" | "cr");
                if quoted && at(i) == '\'' && word == "b" {
                    i += if at(i + 1) == '\\' { 4 } else { 3 };
                    while i < c.len() && c[i - 1] != '\'' {
                        i += 1;
                    }
                } else if quoted && at(i) == '"' && !word.contains('r') {
                    i = skip_string(i + 1, None, &mut line);
                } else if quoted && word.contains('r') && (at(i) == '"' || at(i) == '#') {
                    let hashes = (i..).take_while(|&k| at(k) == '#').count();
                    if at(i + hashes) == '"' {
                        i = skip_string(i + hashes + 1, Some(hashes), &mut line);
                    } else {
                        // A raw identifier, `r#type`.
                        i += 1;
                    }
                } else if !ch.is_ascii_digit() {
                    out.push((Tok::Ident(word), line));
                }
            }
            _ => {
                if !ch.is_whitespace() {
                    out.push((Tok::Other(ch), line));
                }
                i += 1;
            }
        }
    }
    out
}

/// Where `unsafe` may appear (issue 17): the prefetch hints of `engine/prefetch.rs` and the
/// allocator's option call in `main.rs` (mimalloc's options are not atomic; its collect, which
/// `serve` needs, is safe in the allocator crate), each block under a `// SAFETY:` comment.
/// Everything else is safe Rust; a new `unsafe` anywhere fails here until it is argued for and
/// listed.
const UNSAFE_ALLOWED: &[(&str, usize)] = &[("src/engine/prefetch.rs", 1), ("src/main.rs", 1)];

#[test]
fn unsafe_only_where_allowed_and_argued() {
    let src = crate::root().join("src");
    let files = crate::files_under(&src)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"));
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("source readable");
        let rel = path
            .strip_prefix(src.parent().unwrap_or(&src))
            .unwrap_or(&path)
            .display()
            .to_string();
        let lines: Vec<&str> = text.lines().collect();
        for (tok, line) in lex(&text) {
            if tok != Tok::Ident("unsafe".into()) {
                continue;
            }
            *found.entry(rel.clone()).or_default() += 1;
            let above = &lines[line.saturating_sub(4)..line.saturating_sub(1)];
            if !above
                .iter()
                .any(|l| l.trim_start().starts_with("// SAFETY:"))
            {
                problems.push(format!(
                    "{rel}:{line}: `unsafe` without a `// SAFETY:` comment above it"
                ));
            }
        }
    }
    for (file, n) in &found {
        let allowed = UNSAFE_ALLOWED
            .iter()
            .find(|(f, _)| f == file)
            .map_or(0, |a| a.1);
        if *n > allowed {
            problems.push(format!("{file}: {n} `unsafe` (allowed: {allowed})"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(found.values().sum::<usize>(), 2, "unsafe census: {found:?}");
}

#[test]
fn circles_are_found_on_a_fake_graph() {
    // 0 -> 1 -> 2 -> 0 is a circle, 3 <-> 4 another; 5 -> 5 (a file naming itself) and the
    // chain 6 -> 7 -> 0 are not.
    let edges = [
        (0, 1),
        (1, 2),
        (2, 0),
        (3, 4),
        (4, 3),
        (5, 5),
        (6, 7),
        (7, 0),
    ];
    let found = find_cycles(8, &edges);
    let want = vec![(vec![0, 1, 2], vec![0, 1, 2]), (vec![3, 4], vec![3, 4])];
    assert_eq!(found, want);
    assert!(find_cycles(3, &[(0, 1), (1, 2), (0, 2)]).is_empty());
}

#[test]
fn a_file_may_use_the_module_it_sits_in() {
    let file = |module: &[&str]| File {
        rel: String::new(),
        krate: Crate::Lib,
        module: module.iter().map(|m| m.to_string()).collect(),
        refs: Vec::new(),
        defines: BTreeSet::new(),
        reexports: BTreeMap::new(),
        globs: Vec::new(),
    };
    let (nodes, device, send) = (
        file(&["nodes"]),
        file(&["nodes", "device"]),
        file(&["nodes", "device", "send"]),
    );
    assert!(is_ancestor(&nodes, &send) && is_ancestor(&device, &send));
    assert!(!is_ancestor(&send, &device) && !is_ancestor(&device, &device));
    assert!(!is_ancestor(&file(&["nodes", "mailbox"]), &send));
}

#[test]
fn upward_and_sideways_imports_are_found_on_a_fake_graph() {
    let layers: &[&[&str]] = &[&["top"], &["left", "right"], &["bottom"]];
    let tops: Vec<String> = ["top", "left", "right", "bottom", "left"]
        .map(String::from)
        .into();
    let down = [(0, 1), (0, 3), (1, 3), (2, 3), (1, 4), (4, 1)];
    assert!(layer_violations(&tops, &down, layers).is_empty());
    let bad = [(3, 1), (1, 0), (1, 2)];
    assert_eq!(layer_violations(&tops, &bad, layers), bad.to_vec());
}

#[test]
fn references_are_read_from_code_only() {
    let text = r##"
        //! Mentions crate::report in a comment.
        use super::{a::B, c as d, self as e};
        use crate::{x::{self, Y}, z::*};
        mod child;
        fn f() { let s = "crate::report"; let r = r#"crate::sim"#; let c = '"'; crate::net::f(); }
        fn g() { child::h(); other::k(); std::mem::take(&mut 1); }
        mod inner {
            use super::*;
            fn t() { super::super::up::f(); }
        }
        #[cfg(test)]
        mod tests { use crate::sim::World; fn t() { crate::report::f(); } }
        #[cfg(test)]
        fn helper() { crate::live::f(); }
        #[cfg(test)]
        mod more_tests;
        fn after() { self::inner::t(); }
    "##;
    let scan = scan(text, Crate::Lib, &["m".to_string(), "n".to_string()]);
    let got: Vec<String> = scan.refs.iter().map(|r| r.1.join("::")).collect();
    let want = [
        "m::a::B",
        "m::c",
        "m",
        "x",
        "x::Y",
        "z",
        "net::f",
        "m::n::child::h",
        "m::n",
        "m::up::f",
        "m::n::inner::t",
    ];
    assert_eq!(got, want);
    assert_eq!(scan.child_files, ["child"]);
    assert_eq!(
        scan.inline_modules,
        [vec!["m", "n", "inner"], vec!["m", "n", "tests"]]
    );
}
