//! Command-line grammar. Names are fixed by the product contract.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::client::report::Report;

#[derive(Parser)]
#[command(
    name = "wharf",
    version,
    about = "A container registry with content trust built in"
)]
pub struct Cli {
    /// Output of client commands: table (text for people) or json (for scripts; a failure
    /// is then one JSON object {"error":{"code","message"}} on standard error).
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (registry, trust, token service) on one HTTPS listener.
    Serve {
        /// TOML configuration file; every key can also be set as WHARF_<SECTION>_<KEY>.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the effective configuration (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Move a single-machine deployment (SQLite, blobs on disk) to PostgreSQL and S3.
    ///
    /// Stop the server first. Copies every blob (verifying its digest; a rerun skips
    /// blobs already copied) and then all metadata in one transaction: users, secrets,
    /// roles, tokens, trust data and keys, settings, audit. Both configurations need the
    /// same key-encryption key. Uploads in flight are not moved.
    Migrate {
        /// Configuration of the deployment to move (SQLite in its data_dir).
        #[arg(long)]
        from: PathBuf,
        /// Configuration of the new deployment ([database] url, [storage]).
        #[arg(long)]
        to: PathBuf,
        /// Replace whatever the target database holds instead of refusing.
        #[arg(long)]
        force: bool,
    },
    /// Log in to a registry and store a refresh token in the Docker config file.
    Login(LoginArgs),
    /// Remove the login stored for a registry from the Docker config.
    Logout(LogoutArgs),
    /// Show or change the registry-level content-trust policy (owner only).
    ContentTrust(ContentTrustArgs),
    /// Manage users (owner only).
    User(AdminArgs<UserCommand>),
    /// Manage service principals: generated client id and secret, for CI (owner only).
    Sp(AdminArgs<SpCommand>),
    /// Show, enable or disable the registry's admin account (owner only).
    AdminAccount(AdminArgs<AdminAccountCommand>),
    /// Built-in roles and role assignments (owner only).
    Role(AdminArgs<RoleCommand>),
    /// Repository-scoped tokens (owner only).
    Token(AdminArgs<TokenCommand>),
    /// The key that signs access tokens: show it or rotate it (owner only).
    TokenKey(AdminArgs<TokenKeyCommand>),
    /// The audit trail of administrative changes (owner only).
    Audit(AdminArgs<AuditCommand>),
    /// Who may pull without credentials: registry-wide or per repository (owner only).
    ///
    /// Open scopes allow pulls and reading trust metadata without a login; never pushes,
    /// signing or the catalog.
    AnonymousPull(AdminArgs<AnonymousPullCommand>),
    /// Your own account (the stored login's user): change your password.
    Account(AdminArgs<AccountCommand>),
    /// Repositories and tags: list them, remove a tag, delete a manifest.
    Repository(AdminArgs<RepositoryCommand>),
    /// The signature policy: which manifests the registry serves to every client (owner only).
    ///
    /// One rule per scope (registry, repository:<name>, repository:<prefix>/*); the most
    /// specific rule covering a repository applies. Its mode is off, audit (serve, but
    /// record what enforce would refuse) or enforce (refuse unsigned manifests with
    /// DENIED), and it names what counts as signed: Docker Content Trust, cosign keys,
    /// Notation roots. Any one accepted signature is enough.
    Policy(AdminArgs<PolicyCommand>),
    /// Garbage collection: free the blobs nothing references any more (owner only).
    ///
    /// Online (pushes continue). Only what has been unreferenced for longer than the grace
    /// period goes (the server's gc.grace_seconds unless --grace). Manifests are not
    /// collected; delete them (`wharf repository delete`) to free their blobs.
    Gc(AdminArgs<GcCommand>),
    /// Storage quotas: the most bytes a scope may hold (owner only).
    ///
    /// One quota per scope (registry, repository:<name>, repository:<prefix>/*); the most
    /// specific one covering a repository applies. A push that would take its scope over
    /// the limit is refused with DENIED and nothing is stored. A scope's size is what
    /// `wharf repository usage` counts: its distinct blobs, shared ones once, plus its
    /// manifests.
    Quota(AdminArgs<QuotaCommand>),
    /// Retention: remove untagged manifests after N days and tags beyond the newest K of a
    /// pattern, per registry, repository or prefix (owner only).
    ///
    /// Signed content stays: a manifest that is a Docker Content Trust signed target or the
    /// subject of a signature (cosign, Notation) is never removed as untagged, and a
    /// DCT-signed tag is never removed by a tag rule. Blobs are freed by a later `wharf gc run`.
    Retention(AdminArgs<RetentionCommand>),
    /// Sign images and manage signing keys without a Docker daemon, cosign or notation.
    ///
    /// Docker Content Trust (the default --format dct): sign, inspect, revoke, keys where
    /// docker keeps them ($DOCKER_CONFIG/trust/private, docker's format); passphrases from
    /// DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE (root keys) and
    /// DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE (every other key), or a prompt on a
    /// terminal. --format cosign: cosign key pairs and signatures stored as cosign stores
    /// them (`sha256-<digest>.sig`). --format notation: Notary Project signatures pushed as
    /// OCI referrers of the image. Uses the login `wharf login` stored.
    Trust(TrustArgs),
}

#[derive(Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    pub command: Trust,
    /// Registry host[:port], when the references name none; defaults to the one `wharf
    /// login` used.
    #[arg(long, env = "WHARF_REGISTRY", global = true)]
    pub registry: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Which kind of signature: Docker Content Trust, cosign or Notation.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignatureFormat {
    Dct,
    Cosign,
    Notation,
}

/// `wharf trust …`. One enum so that further subcommands merge as single lines.
#[derive(Subcommand)]
pub enum Trust {
    /// Signing keys: the Docker trust store ($DOCKER_CONFIG/trust/private), or cosign and
    /// Notation key files.
    #[command(subcommand)]
    Key(TrustKey),
    /// Print what `docker trust inspect` prints (the same JSON, or --pretty tables).
    ///
    /// Signed tags and their signers, the signers' keys, the root and repository keys.
    Inspect {
        /// HOST[:PORT]/REPOSITORY[:TAG]; a tag shows only that tag.
        #[arg(required = true)]
        references: Vec<String>,
        /// docker's human-friendly tables instead of JSON.
        #[arg(long)]
        pretty: bool,
    },
    /// Sign images that are in the registry.
    ///
    /// dct: HOST[:PORT]/REPOSITORY:TAG, all in one repository and one publish; each tag's
    /// digest and size go into the roles your keys can sign (your delegations, else
    /// `targets`); a repository without trust data is initialised as docker does it.
    /// cosign / notation: REPO:TAG (or HOST/REPO:TAG, REPO@sha256:...); the cosign key's
    /// passphrase comes from COSIGN_PASSWORD or the terminal. Signing what this key already
    /// signed adds nothing.
    Sign {
        #[arg(required = true, value_name = "REPO:TAG")]
        references: Vec<String>,
        #[arg(long, value_enum, default_value_t = SignatureFormat::Dct)]
        format: SignatureFormat,
        /// dct: sign only into this delegation (targets/NAME) with its signer's key.
        #[arg(long)]
        role: Option<String>,
        /// cosign / notation: the private key, NAME.key as `wharf trust key generate` (or
        /// cosign) wrote it.
        #[arg(long)]
        key: Option<PathBuf>,
        /// notation: the signing certificate (PEM; a chain leaf first).
        #[arg(long)]
        cert: Option<PathBuf>,
    },
    /// Sign every tag Docker Content Trust validly signs now with cosign or Notation.
    ///
    /// The trust data is verified as a DCT client would; each tag `docker pull` would trust
    /// gets a signature of the same digest. Unsigned tags, trust data that does not verify
    /// (e.g. an expired role) and digests no longer in the registry are skipped and named.
    /// What this key signed already is not signed again, so a second run adds nothing.
    /// A repository you may not push to is reported as refused (exit status 1); the
    /// others are still migrated.
    Migrate {
        /// HOST[:PORT]/REPOSITORY, one or more; HOST[:PORT]/PREFIX/* is every repository
        /// under PREFIX/ you may see in the catalog, HOST[:PORT]/* every one.
        #[arg(required = true)]
        repositories: Vec<String>,
        /// The format to sign in: cosign or notation.
        #[arg(long, value_enum)]
        to: SignatureFormat,
        /// The cosign or Notation private key.
        #[arg(long)]
        key: Option<PathBuf>,
        /// notation: the signing certificate.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// List what would be signed; sign nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Who may sign a repository (Docker Content Trust delegations), as `docker trust
    /// signer` manages them; needs the repository key in the store.
    #[command(subcommand)]
    Signer(TrustSigner),
    /// Copy signed images and their Docker Content Trust data from another registry.
    ///
    /// SOURCE is any registry (with its notary server); DESTINATION a repository of the
    /// Wharf you are logged in to. The source's trust data is verified first; every tag
    /// `docker pull` trusts is copied as the signed digest, and the trust data is published
    /// with the publisher's targets and delegation signatures unchanged and a new root,
    /// signed by the publisher's root key (which must be in your trust store), naming the
    /// destination's snapshot and timestamp keys. Source credentials come from the Docker
    /// config (`docker login`), else anonymous.
    Copy {
        /// HOST[:PORT]/REPOSITORY to copy from.
        source: String,
        /// HOST[:PORT]/REPOSITORY to copy to (a Wharf; needs push and sign).
        destination: String,
        /// Also copy unsigned tags, as plain images.
        #[arg(long)]
        all_tags: bool,
        /// The source's trust server (https://…); the source registry itself by default, as
        /// docker does.
        #[arg(long, value_name = "URL")]
        source_trust_server: Option<String>,
        /// A CA certificate (PEM) the source registry and trust server are trusted by.
        #[arg(long, value_name = "FILE")]
        source_ca: Option<PathBuf>,
    },
    /// Remove the DCT signature of REPO:TAG, or of every tag of REPO (--yes).
    ///
    /// From `targets` and every delegation holding it whose key is in the store; one
    /// publish. A DCT pull of the tag is then refused, unless a role you hold no key for
    /// still signs it.
    Revoke {
        /// HOST[:PORT]/REPOSITORY[:TAG].
        reference: String,
        /// Confirm revoking every tag (needed without a terminal).
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Subcommand)]
pub enum TrustSigner {
    /// Add signer NAME to each repository: its keys in `targets/NAME` and
    /// `targets/releases`, published in targets.json signed by the repository key.
    Add {
        name: String,
        /// HOST[:PORT]/REPOSITORY, one or more. One without trust data is initialised
        /// first, as docker does: the store's root key (or a new one), a new repository key.
        #[arg(required = true)]
        repositories: Vec<String>,
        /// The signer's public key (PEM PUBLIC KEY or CERTIFICATE), e.g. NAME.pub; repeatable.
        #[arg(long, required = true)]
        key: Vec<PathBuf>,
    },
    /// Remove signer NAME from each repository (its delegation and its keys in
    /// `targets/releases`).
    Remove {
        name: String,
        #[arg(required = true)]
        repositories: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum TrustKey {
    /// Generate a signing key NAME.
    ///
    /// dct: the private key goes into the trust store, NAME.pub (for `docker trust signer
    /// add --key`) into the current directory or --dir. cosign: NAME.key (encrypted) and
    /// NAME.pub. notation: NAME.key and a self-signed code-signing certificate NAME.crt.
    Generate {
        /// dct: lowercase letters, digits, '-' and '_', starting with a letter or digit.
        name: String,
        #[arg(long, value_enum, default_value_t = SignatureFormat::Dct)]
        format: SignatureFormat,
        /// dct: directory for NAME.pub.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// notation: use this certificate instead of generating one (with --cert-key).
        #[arg(long, requires = "cert_key")]
        cert: Option<PathBuf>,
        /// notation: the private key of --cert (PKCS#8 PEM).
        #[arg(long, requires = "cert")]
        cert_key: Option<PathBuf>,
    },
    /// Load a private key (PEM, encrypted or not) into the trust store as signer NAME.
    Load {
        /// PEM private key file; an encrypted one is opened with the repository passphrase.
        file: PathBuf,
        #[arg(long)]
        name: String,
    },
    /// List the keys in the trust store: key ID, role, repository (GUN).
    List,
    /// Rotate a repository's root, targets (repository), snapshot or timestamp key.
    ///
    /// A new root.json names the new key, signed by the root key (a root rotation by the
    /// old and the new root key, so clients that trust the old root accept it). root and
    /// targets keys are yours (new ones go into the store); snapshot and timestamp keys are
    /// the registry's: rotate those with -r.
    Rotate {
        /// HOST[:PORT]/REPOSITORY.
        repository: String,
        /// root, targets, snapshot or timestamp.
        role: String,
        /// The registry holds the key (snapshot, timestamp): it makes the new one.
        #[arg(short = 'r', long)]
        server_managed: bool,
    },
    /// Write every private key (root, repository, delegation) into one file encrypted with
    /// a backup passphrase (WHARF_BACKUP_PASSPHRASE, or asked twice on the terminal).
    ///
    /// The key files are kept byte for byte, still encrypted with their own passphrases.
    /// Lists each key's id, role and GUN.
    Backup {
        /// The backup file to write (mode 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Put the keys of a backup back into $DOCKER_CONFIG/trust/private.
    ///
    /// Everything is checked first: a wrong passphrase, a changed file, a bad entry or a
    /// different key file already there under the same key id refuses the whole restore.
    Restore {
        /// A file written by `wharf trust key backup`.
        file: PathBuf,
        /// Replace key files that differ from the backup's instead of refusing.
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(Subcommand)]
pub enum QuotaCommand {
    /// Print the quotas and their version.
    Show,
    /// Set the quota of a scope (the others stay).
    Set {
        /// registry, repository:<name> or repository:<prefix>/*.
        scope: String,
        /// Bytes, or a whole number of KiB, MiB, GiB or TiB: 10GiB.
        size: String,
    },
    /// Remove the quota of a scope.
    Remove {
        /// The scope as `show` lists it.
        scope: String,
    },
}

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Print the rules and the policy's version.
    Show,
    /// Add the rule for a scope, or replace the one it has (the other rules stay).
    Set(RetentionSetArgs),
    /// Remove the rule for a scope.
    Remove {
        /// The scope as `show` lists it.
        #[arg(long)]
        scope: String,
    },
    /// Apply the policy now and print what went and what stayed, with the reasons.
    Run {
        /// Change nothing; list what a run would remove and keep.
        #[arg(long)]
        dry_run: bool,
        /// Only this repository.
        #[arg(long, value_name = "NAME")]
        repository: Option<String>,
    },
}

#[derive(Args)]
pub struct RetentionSetArgs {
    /// registry, repository:<name> or repository:<prefix>/*.
    #[arg(long)]
    pub scope: String,
    /// Remove manifests no tag has pointed at for this many days.
    #[arg(long, value_name = "DAYS")]
    pub untagged_after_days: Option<u32>,
    /// Keep the newest COUNT tags (by push time) matching the glob PATTERN (* and ?),
    /// remove the older ones (repeatable; a tag belongs to the first pattern it matches;
    /// tags no pattern matches are kept).
    #[arg(long = "keep-tags", value_name = "PATTERN=COUNT")]
    pub keep_tags: Vec<String>,
    /// Switch retention off for this scope (a more specific scope exempting repositories
    /// from a wider rule).
    #[arg(long)]
    pub disabled: bool,
}

#[derive(Subcommand)]
pub enum GcCommand {
    /// Run one garbage collection now and print what it removed.
    Run {
        /// Change nothing; list what a run would remove.
        #[arg(long)]
        dry_run: bool,
        /// Grace period in seconds (at least 600 unless the server allows shorter).
        #[arg(long, value_name = "SECONDS")]
        grace: Option<u64>,
    },
    /// Whether a collection runs (and on which replica), its progress, the last run.
    Status,
}

/// A subcommand plus how to reach the server.
#[derive(Args)]
pub struct AdminArgs<C: Subcommand> {
    #[command(subcommand)]
    pub command: C,
    /// Registry host[:port]; defaults to the one `wharf login` used.
    #[arg(long, env = "WHARF_REGISTRY", global = true)]
    pub registry: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; prints a generated password unless --password-stdin.
    Create {
        name: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    /// Delete a user and revoke its logins.
    Delete {
        name: String,
    },
    /// Set a user's password: from standard input with --password-stdin, otherwise a
    /// generated one printed once. The user's earlier logins stop working.
    Password {
        name: String,
        /// Read the new password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum SpCommand {
    /// Create a service principal; prints its client id and secret once.
    ///
    /// Without --role it can do nothing until a role is assigned.
    Create {
        name: String,
        /// Assign this role right after creating it, e.g. AcrPush (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Scope of the --role assignments: registry (default), repository:<name> or
        /// repository:<prefix>/*.
        #[arg(long, requires = "roles")]
        scope: Option<String>,
    },
    List,
    /// Delete a service principal and revoke its logins.
    Delete {
        name: String,
    },
    /// Generate a new secret (printed once); the old one stops working.
    ResetSecret {
        name: String,
    },
}

#[derive(Subcommand)]
pub enum AdminAccountCommand {
    Show,
    /// Enable the admin account; prints its user name and a new password once.
    Enable,
    /// Disable the admin account and revoke its logins.
    Disable,
}

#[derive(Subcommand)]
pub enum RoleCommand {
    /// List the built-in roles with their permissions.
    List,
    /// Role assignments.
    #[command(subcommand)]
    Assignment(AssignmentCommand),
}

#[derive(Subcommand)]
pub enum AssignmentCommand {
    Create(AssignmentSpec),
    List {
        /// Only this principal's assignments.
        #[arg(long)]
        assignee: Option<String>,
    },
    Delete(AssignmentSpec),
}

#[derive(Args)]
pub struct AssignmentSpec {
    /// Owner, Contributor, Reader, AcrPull, AcrPush, AcrDelete or AcrImageSigner.
    #[arg(long)]
    pub role: String,
    /// A user or service principal name.
    #[arg(long)]
    pub assignee: String,
    /// registry (default), repository:<name> or repository:<prefix>/*.
    #[arg(long)]
    pub scope: Option<String>,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a repository-scoped token; prints its password once.
    Create {
        name: String,
        /// REPO:ACTIONS, actions from content/read, content/write, content/delete,
        /// metadata/read, metadata/write, trust/write (repeatable).
        #[arg(long = "repository", required = true)]
        repositories: Vec<String>,
    },
    List,
    /// Delete a token and revoke its logins.
    Delete {
        name: String,
    },
}

#[derive(Subcommand)]
pub enum TokenKeyCommand {
    /// Show the current and previous key ids and when they were made.
    Show,
    /// Make a new signing key current; stored logins stay valid.
    ///
    /// Tokens signed by the current key keep working until they expire; tokens signed by
    /// the key before it are refused from now on.
    Rotate,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Newest first.
    List {
        /// How many records.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Subcommand)]
pub enum AnonymousPullCommand {
    /// Print the scopes open to anonymous pull.
    Show,
    /// Open scopes to anonymous pull, in addition to those already open.
    Enable {
        /// registry (the default), repository:<name> or repository:<prefix>/* (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Close the given scopes; without --scope, turn anonymous pull off entirely.
    Disable {
        /// A scope as `show` lists it (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Change your password. Asks on the terminal (without echo) for the current and the
    /// new one; your stored login stops working, so you log in again afterwards.
    Password {
        /// Read the current and the new password from standard input, one per line.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum RepositoryCommand {
    /// List the repositories you may pull from.
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// List the tags of a repository.
    ShowTags {
        /// e.g. team/app
        repository: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// Remove one tag; its manifest stays, pullable by digest.
    Untag {
        /// REPO:TAG, e.g. team/app:v1
        reference: String,
    },
    /// Storage usage: each repository's size and what deleting it would free, and the
    /// registry's total with shared blobs counted once (owner only).
    Usage {
        /// One repository, e.g. team/app; every repository when left out.
        repository: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Delete a manifest and every tag that points to it (REPO@DIGEST), or a whole
    /// repository (REPO; owner only).
    Delete {
        /// REPO@DIGEST, e.g. team/app@sha256:..., or REPO, e.g. team/app
        reference: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Lock a repository (REPO) or tag (REPO:TAG) against deletion and/or writes (owner
    /// only). Without --no-delete or --no-write, both.
    Lock {
        /// REPO or REPO:TAG, e.g. team/app:v1
        reference: String,
        #[command(flatten)]
        attributes: LockAttributes,
    },
    /// Lift a lock set with `lock` (owner only). Without --no-delete or --no-write, both.
    Unlock {
        /// REPO or REPO:TAG, e.g. team/app:v1
        reference: String,
        #[command(flatten)]
        attributes: LockAttributes,
    },
    /// Show the locks of a repository and its tags (owner only).
    Locks {
        /// e.g. team/app
        repository: String,
    },
}

/// Which lock attributes `repository lock` / `unlock` change (ACR's deleteEnabled and
/// writeEnabled).
#[derive(clap::Args)]
pub struct LockAttributes {
    /// Deletion: the tag, its manifest, the repository.
    #[arg(long)]
    pub no_delete: bool,
    /// Writes: pushes of the tag (of any tag, blob or trust data for a repository), and
    /// deletion too.
    #[arg(long)]
    pub no_write: bool,
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Print the rules and the policy's version.
    Show,
    /// Add the rule for a scope, or replace the one it has (the other rules stay).
    Set(PolicySetArgs),
    /// Remove the rule for a scope.
    Remove {
        /// The scope as `show` lists it.
        #[arg(long)]
        scope: String,
    },
    /// Print the whole policy as JSON (what `import` reads).
    Export,
    /// Replace the whole policy with the rules of a JSON file (as `export` writes it; its
    /// version is ignored, the current one is used).
    Import {
        /// A JSON file: {"rules": [...]}.
        file: PathBuf,
    },
}

/// What a rule does with a manifest read.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyMode {
    /// No check.
    Off,
    /// Serve everything; record what enforce would refuse.
    Audit,
    /// Serve only signed manifests; refuse the rest with DENIED.
    Enforce,
}

impl PolicyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Off => "off",
            PolicyMode::Audit => "audit",
            PolicyMode::Enforce => "enforce",
        }
    }
}

#[derive(Args)]
pub struct PolicySetArgs {
    /// registry, repository:<name> or repository:<prefix>/*.
    #[arg(long)]
    pub scope: String,
    /// off, audit or enforce.
    #[arg(long, value_enum)]
    pub mode: PolicyMode,
    /// Accept Docker Content Trust signatures (what `docker pull` with content trust
    /// accepts: targets/releases, then targets).
    #[arg(long)]
    pub dct: bool,
    /// Accept only DCT signatures by this role, e.g. targets/releases (repeatable;
    /// implies --dct).
    #[arg(long = "dct-role", value_name = "ROLE")]
    pub dct_roles: Vec<String>,
    /// Accept cosign signatures by this public key, read from a PEM file (repeatable).
    #[arg(long = "cosign-key", value_name = "NAME=PEM_FILE")]
    pub cosign_keys: Vec<String>,
    /// Accept Notation signatures chaining to this root certificate, read from a PEM
    /// file (repeatable; needs --notation-identity).
    #[arg(long = "notation-root", value_name = "NAME=PEM_FILE")]
    pub notation_roots: Vec<String>,
    /// A trusted Notation signer, "x509.subject: <DN>", or "*" for any signer chaining to
    /// the roots (repeatable).
    #[arg(long = "notation-identity", value_name = "ID")]
    pub notation_identities: Vec<String>,
    /// Check publishers' push and signing sessions too (by default they may read the
    /// unsigned manifests they are about to sign).
    #[arg(long)]
    pub no_publisher_exemption: bool,
}

/// How many entries to ask the registry for per request; every page is fetched.
#[derive(Args)]
pub struct Paging {
    // Hidden: people never need it; tests use it to go through several pages with a few
    // repositories.
    #[arg(long, hide = true, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
}

#[derive(Args)]
pub struct ContentTrustArgs {
    #[command(subcommand)]
    pub command: ContentTrustCommand,
    /// Registry host[:port]; defaults to the one `wharf login` used.
    #[arg(long, env = "WHARF_REGISTRY", global = true)]
    pub registry: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand)]
pub enum ContentTrustCommand {
    /// Print whether content trust is enabled.
    Show,
    /// Enable content trust (signed pushes become possible).
    Enable,
    /// Disable content trust: deletes ALL trust data of every repository, irreversibly.
    Disable {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Delete the trust data of one repository (e.g. after losing its root key).
    Reset {
        repository: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args)]
pub struct ServerArgs {
    /// CA certificate (PEM) to trust for the server, e.g. <data>/tls/ca.crt.
    #[arg(long, env = "WHARF_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct LoginArgs {
    /// Registry host[:port], e.g. localhost:5000.
    pub registry: String,
    #[arg(short, long)]
    pub username: String,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args)]
pub struct LogoutArgs {
    /// Registry host[:port]; defaults to the one `wharf login` used.
    #[arg(env = "WHARF_REGISTRY")]
    pub registry: Option<String>,
}

/// Run a command. Client commands return what they have to say (`Report`) and `main`
/// prints it as `--output` asks; the server prints its own log.
pub async fn run(cli: Cli) -> anyhow::Result<Option<Report>> {
    use crate::client::{
        access, account, anonymous_pull, content_trust, gc, login, policy, quota, repository, retention,
    };
    let report = match cli.command {
        Command::Serve { config, print_config } => {
            crate::serve::serve(config, print_config).await?;
            return Ok(None);
        }
        Command::Migrate { from, to, force } => crate::migrate::migrate(from, to, force, cli.output).await,
        Command::Login(args) => login::login(args).await,
        Command::Logout(args) => login::logout(args),
        Command::ContentTrust(args) => content_trust::run(args, cli.output).await,
        Command::User(a) => access::user(a).await,
        Command::Sp(a) => access::sp(a).await,
        Command::AdminAccount(a) => access::admin_account(a).await,
        Command::Role(a) => access::role(a).await,
        Command::Token(a) => access::token(a).await,
        Command::TokenKey(a) => access::token_key(a).await,
        Command::Audit(a) => access::audit(a).await,
        Command::AnonymousPull(a) => anonymous_pull::run(a).await,
        Command::Account(a) => account::run(a).await,
        Command::Repository(a) => repository::run(a, cli.output).await,
        Command::Policy(a) => policy::run(a).await,
        Command::Gc(a) => gc::run(a).await,
        Command::Quota(a) => quota::run(a).await,
        Command::Retention(a) => retention::run(a).await,
        Command::Trust(a) => crate::client::trust::run(a, cli.output).await,
    };
    report.map(Some)
}
