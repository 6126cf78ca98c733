//! The crypto cost table: the simulated CPU time each crypto operation costs, as a fixed part and
//! a part per KiB of payload. It lives with the scenario, below the nodes, because a scenario
//! names it (`[e2ee] cost_table`) and the keyring (`nodes::keyring`) prices every operation with
//! it; `interop-sim calibrate` measures one for the machine at hand and writes it as a file in the
//! format read here.
//!
//! The file is a TOML table with one key per operation (the keys of [`Op::key`]), each an inline
//! table `{ fixed_ns = .., per_kib_ns = .. }` of non-negative integers; an operation the file does
//! not name keeps its default. The scenario key takes a path (relative to the scenario file's
//! directory) or the same table inline, which is how `to_toml` writes it back: the resolved
//! scenario carries the table's content, so it is self-contained wherever it is read again
//! (sweep points, shard files, shrunk scenarios), and the scenario hash follows the content, not
//! the path (moving the file keeps the hash; editing it changes the hash).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use super::errors::{did_you_mean, Ctx, ScenarioErrors};
use super::values::{check_keys, describe, integer, join, required, Value};

/// Every crypto operation the model counts and prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    KeyGeneration,
    X3dhInitiate,
    X3dhRespond,
    PqxdhInitiate,
    PqxdhRespond,
    RatchetEncrypt,
    RatchetDecrypt,
    SenderKeyEncrypt,
    SenderKeyDecrypt,
    NoiseHandshake,
    NoiseAead,
    /// A media blob: HKDF, AES-256-CBC, HMAC and the two SHA-256 digests (e2ee/attachment.rs).
    AttachmentEncrypt,
    /// The same in reverse, digests and MAC verified.
    AttachmentDecrypt,
    /// MLS (the `mimi` design, src/mls/): a key package made (HPKE key pair, signed leaf).
    MlsKeyPackage,
    /// An application message encrypted to a room (signed, then sealed with the sender's
    /// generation key).
    MlsEncrypt,
    /// An application message read (key derived down the secret tree, opened, verified).
    MlsDecrypt,
    /// A commit of one membership change, in a room of [`MLS_REFERENCE_MEMBERS`] members: the
    /// mean of an add (its Welcome sealed to the newcomer) and a remove (a path update sealed
    /// down the tree).
    MlsCommit,
    /// A member reading such a commit into the next epoch.
    MlsProcessCommit,
    /// A Welcome read into a room of [`MLS_REFERENCE_MEMBERS`] members.
    MlsJoin,
}

/// The room size the MLS membership operations are measured at (their cost grows with the
/// tree: a path update seals to about log2(members) nodes, a Welcome carries the whole tree).
pub const MLS_REFERENCE_MEMBERS: usize = 32;

impl Op {
    pub const ALL: [Op; 19] = [
        Op::KeyGeneration,
        Op::X3dhInitiate,
        Op::X3dhRespond,
        Op::PqxdhInitiate,
        Op::PqxdhRespond,
        Op::RatchetEncrypt,
        Op::RatchetDecrypt,
        Op::SenderKeyEncrypt,
        Op::SenderKeyDecrypt,
        Op::NoiseHandshake,
        Op::NoiseAead,
        Op::AttachmentEncrypt,
        Op::AttachmentDecrypt,
        Op::MlsKeyPackage,
        Op::MlsEncrypt,
        Op::MlsDecrypt,
        Op::MlsCommit,
        Op::MlsProcessCommit,
        Op::MlsJoin,
    ];
    pub fn key(self) -> &'static str {
        match self {
            Op::KeyGeneration => "key_generation",
            Op::X3dhInitiate => "x3dh_initiate",
            Op::X3dhRespond => "x3dh_respond",
            Op::PqxdhInitiate => "pqxdh_initiate",
            Op::PqxdhRespond => "pqxdh_respond",
            Op::RatchetEncrypt => "ratchet_encrypt",
            Op::RatchetDecrypt => "ratchet_decrypt",
            Op::SenderKeyEncrypt => "sender_key_encrypt",
            Op::SenderKeyDecrypt => "sender_key_decrypt",
            Op::NoiseHandshake => "noise_handshake",
            Op::NoiseAead => "noise_aead",
            Op::AttachmentEncrypt => "attachment_encrypt",
            Op::AttachmentDecrypt => "attachment_decrypt",
            Op::MlsKeyPackage => "mls_key_package",
            Op::MlsEncrypt => "mls_encrypt",
            Op::MlsDecrypt => "mls_decrypt",
            Op::MlsCommit => "mls_commit",
            Op::MlsProcessCommit => "mls_process_commit",
            Op::MlsJoin => "mls_join",
        }
    }

    pub fn from_key(key: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.key() == key)
    }
}

/// As its key, so that a table keyed by `Op` hashes and prints like the file.
impl Serialize for Op {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

/// One operation's price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OpCost {
    pub fixed_ns: u64,
    pub per_kib_ns: u64,
}

/// Operations a cost table file names, with their prices.
pub type CostOverrides = BTreeMap<Op, OpCost>;

/// Bound on either part of a price: 10 s per operation (or per KiB) is far beyond any real
/// figure and keeps `fixed + per_kib * bytes / 1024` exact for payloads up to 1 GiB (beyond,
/// it saturates).
pub const COST_NS_MAX: u64 = 10_000_000_000;

/// Simulated CPU cost of each operation: a fixed part and a part per KiB of payload. Defaults
/// are this project's criterion figures (benches/e2ee.rs, DESIGN.md); `interop-sim calibrate`
/// measures a table for the machine at hand.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CostTable {
    /// Per op key: (fixed ns, ns per KiB).
    pub ops: BTreeMap<String, (u64, u64)>,
}

impl Default for CostTable {
    fn default() -> Self {
        let mut ops = BTreeMap::new();
        for (op, fixed, per_kib) in [
            (Op::KeyGeneration, 30_000, 0),
            (Op::X3dhInitiate, 250_000, 0),
            (Op::X3dhRespond, 255_000, 0),
            (Op::PqxdhInitiate, 315_000, 0),
            (Op::PqxdhRespond, 280_000, 0),
            (Op::RatchetEncrypt, 1_300, 1_600),
            (Op::RatchetDecrypt, 1_200, 700),
            (Op::SenderKeyEncrypt, 14_000, 1_600),
            (Op::SenderKeyDecrypt, 28_000, 700),
            (Op::NoiseHandshake, 180_000, 0),
            (Op::NoiseAead, 400, 300),
            // Measured on this project's machine (`interop-sim calibrate` times them too): a
            // fixed part (HKDF, key schedule) and a per-KiB part (AES-256-CBC, HMAC and two
            // SHA-256 passes; CBC encryption is serial, decryption is not).
            (Op::AttachmentEncrypt, 1_300, 3_000),
            (Op::AttachmentDecrypt, 1_000, 1_850),
            // MLS, measured with `interop-sim calibrate` on this project's machine (rooms of
            // MLS_REFERENCE_MEMBERS for the membership operations).
            (Op::MlsKeyPackage, 160_000, 0),
            (Op::MlsEncrypt, 43_000, 4_700),
            (Op::MlsDecrypt, 40_000, 2_900),
            (Op::MlsCommit, 1_520_000, 0),
            (Op::MlsProcessCommit, 225_000, 0),
            (Op::MlsJoin, 1_460_000, 0),
        ] {
            ops.insert(op.key().to_string(), (fixed, per_kib));
        }
        CostTable { ops }
    }
}

impl CostTable {
    pub fn cost_ns(&self, op: Op, bytes: u64) -> u64 {
        let (fixed, per_kib) = self.ops.get(op.key()).copied().unwrap_or((0, 0));
        fixed.saturating_add(per_kib.saturating_mul(bytes) / 1024)
    }

    /// The table with the operations of `overrides` replaced (a scenario's `cost_table`).
    pub fn with_overrides(mut self, overrides: &CostOverrides) -> Self {
        for (op, c) in overrides {
            self.ops
                .insert(op.key().to_string(), (c.fixed_ns, c.per_kib_ns));
        }
        self
    }

    /// One operation's price.
    pub fn get(&self, op: Op) -> OpCost {
        let (fixed_ns, per_kib_ns) = self.ops.get(op.key()).copied().unwrap_or((0, 0));
        OpCost {
            fixed_ns,
            per_kib_ns,
        }
    }
}

/// Reads `[e2ee] cost_table`: a path to a cost table file (relative to the directory of the
/// scenario file being parsed) or the table inline. Problems of the file are reported in the
/// file's own place (file:line:col), after a problem at the key that names it.
pub(crate) fn cost_table(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<CostOverrides> {
    match value.get_ref() {
        DeValue::String(rel) => from_file(ctx, value, path, rel),
        DeValue::Table(t) => {
            let before = ctx.problem_count();
            let ops = entries(ctx, t, path);
            (ctx.problem_count() == before).then_some(ops)
        }
        _ => {
            let what = "a path to a cost table file (a string) or a table of operations";
            ctx.expected(value, path, what);
            None
        }
    }
}

fn from_file(ctx: &mut Ctx, value: &Value<'_>, path: &str, rel: &str) -> Option<CostOverrides> {
    if ctx.cost_table_given() {
        // `--cost-table` replaces it: the path is not read, wherever it points.
        return Some(CostOverrides::new());
    }
    let file = resolve(ctx.file_name(), rel);
    let shown = file.display().to_string();
    if let Some(folder) = outside_scenario_folder(ctx.file_name(), &file) {
        // A scenario from elsewhere must not make the tool read (and quote, in its problems)
        // any file the user can read.
        let message = format!(
            "the cost table {shown} is outside the scenario's folder ({folder}); a scenario reads files beside it only"
        );
        let help = "copy the table into the scenario's folder (or a folder below it)".to_string();
        ctx.problem(value.span(), path, message, Some(help));
        return None;
    }
    let text = match super::read_bounded(&file) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string()),
        Err(why) => Err(why),
    };
    let text = match text {
        Ok(t) => t,
        Err(why) => {
            let message = format!("cannot use the cost table {shown}: {why}");
            let help = "a relative path is read from the scenario file's directory".to_string();
            ctx.problem(value.span(), path, message, Some(help));
            return None;
        }
    };
    match parse_file(&text, &shown) {
        Ok(ops) => Some(ops),
        Err(errors) => {
            let count = errors.len();
            let noun = if count == 1 { "problem" } else { "problems" };
            let message = format!("the cost table {shown} is invalid ({count} {noun}, below)");
            ctx.error(value.span(), path, message);
            ctx.append(value.span().start, errors);
            None
        }
    }
}

/// `rel` against the directory of the scenario file `scenario_file` (the working directory for
/// a bare file name); absolute paths stay as they are.
fn resolve(scenario_file: &str, rel: &str) -> PathBuf {
    let dir = Path::new(scenario_file).parent().unwrap_or(Path::new(""));
    dir.join(rel)
}

/// The scenario's folder, when `file` (existing) resolves to a place outside it (through `..`,
/// an absolute path or a link). A file that does not exist is left to the read, which says so.
fn outside_scenario_folder(scenario_file: &str, file: &Path) -> Option<String> {
    let dir = Path::new(scenario_file).parent().unwrap_or(Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let folder = dir.canonicalize().ok()?;
    let target = file.canonicalize().ok()?;
    (!target.starts_with(&folder)).then(|| folder.display().to_string())
}

/// Reads the cost table a user named on the command line (`--cost-table FILE`): any path,
/// since the user chose it (a path inside a scenario file is held to the scenario's folder).
pub fn load_file(path: &Path) -> Result<CostOverrides, ScenarioErrors> {
    let shown = path.display().to_string();
    let text = match super::read_bounded(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string()),
        Err(why) => Err(why),
    };
    match text {
        Ok(text) => parse_file(&text, &shown),
        Err(why) => Err(ScenarioErrors::whole_file(
            &shown,
            format!("cannot use the cost table {shown}: {why}"),
        )),
    }
}

/// Parses a cost table file; `file_name` is used in problems only.
pub fn parse_file(source: &str, file_name: &str) -> Result<CostOverrides, ScenarioErrors> {
    let mut ctx = Ctx::new(source, file_name);
    let (doc, syntax_errors) = DeTable::parse_recoverable(source);
    if let Some(e) = syntax_errors.first() {
        let span = e.span().unwrap_or(0..0);
        let explained = super::syntax::explain(source, span.clone(), e.message().trim());
        ctx.problem(span, &explained.key_path, explained.message, explained.help);
        return Err(ctx.finish());
    }
    let ops = entries(&mut ctx, doc.get_ref(), "");
    if ops.is_empty() && !ctx.has_problems() {
        let message = format!(
            "the cost table names no operation (expected keys such as {} = {{ fixed_ns = .., per_kib_ns = .. }})",
            Op::RatchetEncrypt.key()
        );
        ctx.error(0..0, "", message);
    }
    if ctx.has_problems() {
        Err(ctx.finish())
    } else {
        Ok(ops)
    }
}

/// The operations of a table, each `{ fixed_ns, per_kib_ns }`.
fn entries(ctx: &mut Ctx, t: &DeTable<'_>, path: &str) -> CostOverrides {
    let keys = Op::ALL.map(Op::key);
    let mut ops = CostOverrides::new();
    for (key, value) in t.iter() {
        let name: &str = key.get_ref();
        let op_path = join(path, name);
        let Some(op) = Op::from_key(name) else {
            let help = did_you_mean(name, &keys)
                .unwrap_or_else(|| format!("the operations: {}", keys.join(", ")));
            let message = format!("unknown operation '{name}'");
            ctx.problem(key.span(), &op_path, message, Some(help));
            continue;
        };
        if let Some(c) = price(ctx, value, &op_path) {
            ops.insert(op, c);
        }
    }
    ops
}

fn price(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<OpCost> {
    let DeValue::Table(t) = value.get_ref() else {
        let message = format!(
            "expected a table {{ fixed_ns = .., per_kib_ns = .. }}, found {}",
            describe(value.get_ref())
        );
        ctx.error(value.span(), path, message);
        return None;
    };
    check_keys(ctx, t, path, &["fixed_ns", "per_kib_ns"]);
    let mut read = |key: &str| {
        required(ctx, t, value.span(), path, key)
            .and_then(|v| integer(ctx, v, &join(path, key), 0, COST_NS_MAX))
    };
    let fixed_ns = read("fixed_ns");
    let per_kib_ns = read("per_kib_ns");
    Some(OpCost {
        fixed_ns: fixed_ns?,
        per_kib_ns: per_kib_ns?,
    })
}

/// A cost table file: `header` lines as comments, then one line per operation in `ops`.
pub fn render_file(header: &[String], ops: &CostOverrides) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for (op, c) in ops {
        out.push_str(&format!(
            "{} = {{ fixed_ns = {}, per_kib_ns = {} }}\n",
            op.key(),
            c.fixed_ns,
            c.per_kib_ns
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(source: &str) -> Vec<String> {
        match parse_file(source, "c.toml") {
            Ok(ops) => panic!("should be rejected, parsed as {ops:?}"),
            // The headline of each problem (the source line and caret follow it).
            Err(e) => e
                .iter()
                .map(|p| p.to_string().lines().next().unwrap_or("").to_string())
                .collect(),
        }
    }

    #[test]
    fn keys_are_unique_and_round_trip() {
        for op in Op::ALL {
            assert_eq!(Op::from_key(op.key()), Some(op));
        }
        let defaults = CostTable::default();
        assert_eq!(defaults.ops.len(), Op::ALL.len(), "a default for every op");
    }

    #[test]
    fn a_file_replaces_only_the_ops_it_names() {
        let ops = parse_file(
            "# measured\nratchet_encrypt = { fixed_ns = 2000, per_kib_ns = 900 }\n",
            "c.toml",
        )
        .expect("valid");
        let table = CostTable::default().with_overrides(&ops);
        assert_eq!(table.cost_ns(Op::RatchetEncrypt, 2048), 2000 + 1800);
        assert_eq!(
            table.get(Op::X3dhInitiate),
            CostTable::default().get(Op::X3dhInitiate)
        );
        let rendered = render_file(&["x".to_string()], &ops);
        assert_eq!(parse_file(&rendered, "r.toml"), Ok(ops));
    }

    #[test]
    fn bad_files_name_the_place_and_the_key() {
        let p = problems("ratchet_encryptt = { fixed_ns = 1, per_kib_ns = 2 }\n");
        assert_eq!(
            p,
            ["c.toml:1:1: ratchet_encryptt: unknown operation 'ratchet_encryptt' (did you mean 'ratchet_encrypt'?)"]
        );
        let p = problems("x3dh_initiate = { fixed_ns = -5, per_kib_ns = 0 }\n");
        assert_eq!(
            p,
            ["c.toml:1:30: x3dh_initiate.fixed_ns: expected an integer >= 0, found -5"]
        );
        let p = problems("noise_aead = { fixed_ns = 1 }\nnoise_handshake = 3\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("noise_aead.per_kib_ns: missing required key"));
        assert!(p[1].contains("noise_handshake: expected a table"));
        let p = problems("x = [\n");
        assert!(p[0].starts_with("c.toml:"), "{p:?}");
        assert!(p[0].contains("invalid TOML"), "{p:?}");
        let p = problems("# nothing\n");
        assert!(p[0].contains("names no operation"), "{p:?}");
    }

    #[test]
    fn huge_prices_do_not_overflow() {
        let ops = CostOverrides::from([(
            Op::NoiseAead,
            OpCost {
                fixed_ns: COST_NS_MAX,
                per_kib_ns: COST_NS_MAX,
            },
        )]);
        let table = CostTable::default().with_overrides(&ops);
        let huge = table.cost_ns(Op::NoiseAead, u64::MAX);
        assert!(
            huge >= u64::MAX / 1024,
            "saturates instead of wrapping: {huge}"
        );
        let gib = table.cost_ns(Op::NoiseAead, 1 << 30);
        assert_eq!(
            gib,
            COST_NS_MAX + COST_NS_MAX * (1 << 20),
            "exact at any real size"
        );
    }
}
