//! `tracechain keygen` and `tracechain genesis`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::json;

use super::ensure_parent;
use crate::{
    crypto::{KeyFile, KeyKind, Scheme, SecretKey},
    genesis::{
        AttestationRule, ContainmentRule, DeviceConflictRule, EventIdentity, Genesis, GenesisFile,
        LineageRule, MemberEntry, MktRule, Role,
    },
};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum KindArg {
    Member,
    Device,
    Node,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum SchemeArg {
    Ed25519,
    P256,
}

impl From<SchemeArg> for Scheme {
    fn from(s: SchemeArg) -> Self {
        match s {
            SchemeArg::Ed25519 => Scheme::Ed25519,
            SchemeArg::P256 => Scheme::P256,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct KeygenArgs {
    /// What the key is for.
    #[arg(long, value_enum)]
    kind: KindArg,
    /// Member id, device id (e.g. urn:epc:id:giai:4000001.111) or node name.
    #[arg(long)]
    id: String,
    /// Signature scheme (members and nodes use ed25519; devices may use p256).
    #[arg(long, value_enum, default_value = "ed25519")]
    scheme: SchemeArg,
    /// Where to write the key file (mode 0600).
    #[arg(long)]
    out: PathBuf,
}

pub(super) fn keygen(a: KeygenArgs, json: bool) -> anyhow::Result<()> {
    let scheme = Scheme::from(a.scheme);
    let kind = match a.kind {
        KindArg::Member => KeyKind::Member,
        KindArg::Device => KeyKind::Device,
        KindArg::Node => KeyKind::Node,
    };
    if kind != KeyKind::Device && scheme != Scheme::Ed25519 {
        bail!("member and node keys are Ed25519; only devices may use p256");
    }
    if a.out.exists() {
        bail!("{} exists; refusing to overwrite a key", a.out.display());
    }
    let key = SecretKey::generate(scheme);
    let file = KeyFile::new(kind, a.id, &key);
    ensure_parent(&a.out)?;
    file.save(&a.out)?;
    if json {
        println!(
            "{}",
            json!({"id": file.id, "scheme": scheme.to_string(), "public_key": file.public_key, "file": a.out})
        );
    } else {
        println!(
            "wrote {} key for {} to {}",
            scheme,
            file.id,
            a.out.display()
        );
        println!("public key: {}", file.public_key);
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(super) struct GenesisArgs {
    /// Chain id.
    #[arg(long)]
    chain_id: String,
    /// A member as ID:ROLE[:HOST:PORT], e.g. farm:producer:127.0.0.1:7001. Repeat.
    /// Roles: producer, carrier, retailer, customs, auditor.
    #[arg(long = "member", required = true)]
    members: Vec<String>,
    /// Members that run validators (default: all).
    #[arg(long, value_delimiter = ',')]
    validators: Vec<String>,
    /// Output directory: genesis.toml and keys/<id>.{node,admin}.json.
    #[arg(long)]
    out_dir: PathBuf,
    /// Genesis time, unix ms (default: now).
    #[arg(long)]
    genesis_time_ms: Option<i64>,
    /// A GS1 company prefix a member holds, as MEMBER=PREFIX (e.g. farm=4012345): the
    /// things whose GS1 keys carry it are that member's to commission. Repeat.
    #[arg(long = "company-prefix")]
    company_prefixes: Vec<String>,
}

fn parse_role(s: &str) -> anyhow::Result<Role> {
    Ok(s.parse::<Role>()?)
}

pub(super) fn genesis(a: GenesisArgs, json: bool) -> anyhow::Result<()> {
    let keys_dir = a.out_dir.join("keys");
    let genesis_path = a.out_dir.join("genesis.toml");
    if genesis_path.exists() {
        bail!("{} exists; refusing to overwrite", genesis_path.display());
    }
    std::fs::create_dir_all(&keys_dir)
        .with_context(|| format!("creating {}", keys_dir.display()))?;
    let mut prefixes: Vec<(String, String)> = Vec::new();
    for spec in &a.company_prefixes {
        let Some((member, prefix)) = spec.split_once('=') else {
            bail!("--company-prefix {spec:?} is not MEMBER=PREFIX");
        };
        if !a
            .members
            .iter()
            .any(|m| m.split(':').next() == Some(member))
        {
            bail!("--company-prefix {spec:?}: {member} is not a --member");
        }
        prefixes.push((member.to_string(), prefix.to_string()));
    }
    let mut entries = Vec::new();
    for (i, spec) in a.members.iter().enumerate() {
        let mut parts = spec.splitn(3, ':');
        let (Some(id), Some(role)) = (parts.next(), parts.next()) else {
            bail!("member {spec:?} is not ID:ROLE[:HOST:PORT]");
        };
        let address = parts
            .next()
            .map_or_else(|| format!("127.0.0.1:{}", 7001 + i), str::to_string);
        let node = SecretKey::generate(Scheme::Ed25519);
        let admin = SecretKey::generate(Scheme::Ed25519);
        KeyFile::new(KeyKind::Node, id, &node).save(&keys_dir.join(format!("{id}.node.json")))?;
        KeyFile::new(KeyKind::Member, id, &admin)
            .save(&keys_dir.join(format!("{id}.admin.json")))?;
        entries.push(MemberEntry {
            id: id.to_string(),
            name: id.to_string(),
            role: parse_role(role)?,
            node_key: hex::encode(node.public_key()),
            admin_key: hex::encode(admin.public_key()),
            address,
            validator: a.validators.is_empty() || a.validators.iter().any(|v| v == id),
            gs1_company_prefixes: prefixes
                .iter()
                .filter(|(m, _)| m == id)
                .map(|(_, p)| p.clone())
                .collect(),
        });
    }
    let genesis = Genesis::from_file(GenesisFile {
        chain_id: a.chain_id,
        genesis_time_ms: a.genesis_time_ms.unwrap_or_else(chrono_now_ms),
        max_clock_skew_ms: 5 * 60 * 1000,
        mkt_rule: MktRule::CURRENT,
        epcis_event_identity: EventIdentity::CURRENT,
        containment: ContainmentRule::CURRENT,
        lineage: LineageRule::CURRENT,
        attestation: AttestationRule::CURRENT,
        device_conflicts: DeviceConflictRule::CURRENT,
        members: entries,
    })?;
    std::fs::write(&genesis_path, genesis.to_toml())?;
    // One config per validator: `tracechain run --config <dir>/<id>.node.toml`.
    for (i, m) in genesis.validator_members().enumerate() {
        let config = super::run::NodeConfigFile {
            genesis: Some("genesis.toml".into()),
            node_key: Some(format!("keys/{}.node.json", m.id).into()),
            data_dir: Some(format!("data/{}", m.id).into()),
            listen: Some(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                50051 + i as u16,
            ))),
            ..Default::default()
        };
        std::fs::write(
            a.out_dir.join(format!("{}.node.toml", m.id)),
            toml::to_string_pretty(&config)?,
        )?;
    }
    if json {
        println!(
            "{}",
            json!({"genesis": genesis_path, "keys": keys_dir, "genesis_hash": hex::encode(genesis.hash())})
        );
    } else {
        println!("wrote {}", genesis_path.display());
        println!("genesis hash {}", hex::encode(genesis.hash()));
        for m in &genesis.members {
            println!(
                "  {:<10} {:<9} {} keys/{}.node.json keys/{}.admin.json",
                m.id,
                format!("{:?}", m.role).to_lowercase(),
                if m.replica.is_some() {
                    "validator"
                } else {
                    "member   "
                },
                m.id,
                m.id
            );
        }
    }
    Ok(())
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
