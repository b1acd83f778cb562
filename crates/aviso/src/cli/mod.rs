//! The operator CLI: `aviso event-type|tenant|endpoint|event|deliveries|key …`
//! call the HTTP API of a running server (`AVISO_URL`, `AVISO_KEY`) and print
//! a table, or the API's JSON with `--json`. See docs/cli.md.

mod client;
mod table;

use clap::{Args, Subcommand};
use client::{Client, Failure};
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;
use table::Table;

/// Where the API is and how to talk to it (every resource command takes these).
#[derive(Args, Clone, Debug)]
pub struct Conn {
    /// Base URL of the server (without /v1).
    #[arg(
        id = "server",
        long = "server",
        env = "AVISO_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API key (admin, tenant or partner).
    #[arg(long, env = "AVISO_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `aviso event-type …`
#[derive(Subcommand, Debug)]
pub enum EventTypeCmd {
    /// Add a type to the catalogue.
    Create {
        /// Name, e.g. `invoice.paid`.
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Group path for portals, e.g. `Billing/Invoices`.
        #[arg(long)]
        group: Option<String>,
        /// Example payload (JSON), sent by test sends of this type.
        #[arg(long)]
        example: Option<String>,
    },
    /// List the catalogue.
    List(Page),
}

/// `aviso tenant …`
#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Create a tenant.
    Create {
        /// Your own id for it (unique).
        #[arg(long)]
        uid: String,
        #[arg(long)]
        name: String,
        /// Partner id (`par_…`) the tenant belongs to.
        #[arg(long)]
        partner: Option<String>,
    },
    /// List tenants.
    List(Page),
}

/// `aviso endpoint …`
#[derive(Subcommand, Debug)]
pub enum EndpointCmd {
    /// Create an endpoint: from flags, or the whole API body with `--body`.
    Create {
        /// Tenant id or uid.
        #[arg(long)]
        tenant: String,
        /// Receiver URL.
        #[arg(long, required_unless_present = "body")]
        url: Option<String>,
        /// Event type or `ENTITY.*` pattern (repeat for several; none = all).
        #[arg(long = "type")]
        types: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// The request body as JSON (`@file` reads a file, `-` stdin); flags
        /// given beside it override its fields.
        #[arg(long)]
        body: Option<String>,
    },
    /// List a tenant's endpoints.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        page: Page,
    },
    /// Show one endpoint.
    Show {
        #[arg(long)]
        tenant: String,
        /// Endpoint id.
        id: String,
    },
    /// Send one test request now and print its result.
    Test {
        #[arg(long)]
        tenant: String,
        /// Endpoint id.
        id: String,
        /// Send this catalogue type (with its example payload).
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Payload to send (JSON, `@file` or `-`).
        #[arg(long)]
        payload: Option<String>,
    },
}

/// `aviso event …`
#[derive(Subcommand, Debug)]
pub enum EventCmd {
    /// Publish an event; the payload comes from `--file`, `--data` or stdin.
    Publish {
        #[arg(long)]
        tenant: String,
        /// Event type.
        #[arg(long = "type")]
        event_type: String,
        /// Payload file (JSON).
        #[arg(long, conflicts_with = "data")]
        file: Option<PathBuf>,
        /// Payload (JSON) on the command line.
        #[arg(long)]
        data: Option<String>,
        /// Idempotency key: repeating it returns the first event.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

/// `aviso deliveries …`
#[derive(Subcommand, Debug)]
pub enum DeliveriesCmd {
    /// An endpoint's deliveries, newest first.
    List {
        #[arg(long)]
        tenant: String,
        /// Endpoint id.
        #[arg(long)]
        endpoint: String,
        /// pending, succeeded, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only this event type.
        #[arg(long = "type")]
        event_type: Option<String>,
        #[command(flatten)]
        page: Page,
    },
}

/// `aviso key …`
#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Create a tenant or partner key (admin); the key is shown once.
    Create {
        /// Tenant id or uid.
        #[arg(long, conflicts_with = "partner", required_unless_present = "partner")]
        tenant: Option<String>,
        /// Partner id.
        #[arg(long)]
        partner: Option<String>,
        #[arg(long, default_value = "")]
        name: String,
    },
}

/// `--limit` and `--cursor` of list commands.
#[derive(Args, Debug, Clone)]
pub struct Page {
    /// Items per page (1–250).
    #[arg(long)]
    limit: Option<u32>,
    /// The `next_cursor` of a previous page.
    #[arg(long)]
    cursor: Option<String>,
}

impl Page {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(c) = &self.cursor {
            q.push(("cursor", c.clone()));
        }
        q
    }
}

/// The API commands of the binary (each takes the `Conn` flags).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Event-type catalogue, through the API (AVISO_URL, AVISO_KEY).
    EventType {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: EventTypeCmd,
    },
    /// Tenants, through the API.
    Tenant {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: TenantCmd,
    },
    /// A tenant's endpoints, through the API.
    Endpoint {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: EndpointCmd,
    },
    /// Publish events, through the API.
    Event {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: EventCmd,
    },
    /// An endpoint's deliveries, through the API.
    Deliveries {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: DeliveriesCmd,
    },
    /// API keys, through the API (admin key).
    Key {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: KeyCmd,
    },
}

/// One resource command with its arguments.
enum Call {
    EventType(EventTypeCmd),
    Tenant(TenantCmd),
    Endpoint(EndpointCmd),
    Event(EventCmd),
    Deliveries(DeliveriesCmd),
    Key(KeyCmd),
}

/// Exit codes (docs/cli.md).
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The API refused the request (4xx), or the input was unusable.
    pub const REFUSED: u8 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: u8 = 2;
    /// The server could not be reached or failed (5xx).
    pub const UNAVAILABLE: u8 = 3;
    /// `endpoint test` ran, and the receiver did not accept the request.
    pub const TEST_FAILED: u8 = 4;
}

/// Runs `cmd` and returns the process exit code, having printed the answer
/// (stdout) or the error (stderr).
pub async fn run(cmd: Command) -> u8 {
    let (conn, call) = match cmd {
        Command::EventType { conn, cmd } => (conn, Call::EventType(cmd)),
        Command::Tenant { conn, cmd } => (conn, Call::Tenant(cmd)),
        Command::Endpoint { conn, cmd } => (conn, Call::Endpoint(cmd)),
        Command::Event { conn, cmd } => (conn, Call::Event(cmd)),
        Command::Deliveries { conn, cmd } => (conn, Call::Deliveries(cmd)),
        Command::Key { conn, cmd } => (conn, Call::Key(cmd)),
    };
    let client = Client::new(&conn.url, conn.key.as_deref());
    match execute(&client, call).await {
        Ok(out) => {
            if conn.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out.json).unwrap_or_default()
                );
            } else {
                print!("{}", out.human);
            }
            if out.json["succeeded"] == Value::Bool(false) {
                eprintln!("the receiver did not accept the test request");
                return exit::TEST_FAILED;
            }
            exit::OK
        }
        Err(f) => {
            eprintln!("error: {f}");
            match f {
                Failure::Refused { .. } | Failure::Input(_) => exit::REFUSED,
                Failure::Unavailable(_) => exit::UNAVAILABLE,
            }
        }
    }
}

/// What a command printed: the API's JSON, and its human rendering.
struct Output {
    json: Value,
    human: String,
}

impl Output {
    fn table(json: Value, t: Table) -> Self {
        Self {
            human: t.render(&json),
            json,
        }
    }

    fn fields(json: Value, keys: &[&str]) -> Self {
        Self {
            human: table::fields(&json, keys),
            json,
        }
    }
}

async fn execute(c: &Client, cmd: Call) -> Result<Output, Failure> {
    match cmd {
        Call::EventType(EventTypeCmd::Create {
            name,
            description,
            group,
            example,
        }) => {
            let mut body = json!({ "name": name });
            put(&mut body, "description", description.map(Value::from));
            put(&mut body, "group", group.map(Value::from));
            put(
                &mut body,
                "example",
                example.map(|e| parse_json("--example", &e)).transpose()?,
            );
            let v = c.post("/v1/event-types", &body).await?;
            Ok(Output::fields(
                v,
                &["name", "group", "description", "created_at"],
            ))
        }
        Call::EventType(EventTypeCmd::List(page)) => {
            let v = c.get("/v1/event-types", &page.query()).await?;
            Ok(Output::table(
                v,
                Table::new(&["name", "group", "archived", "description"]),
            ))
        }
        Call::Tenant(TenantCmd::Create { uid, name, partner }) => {
            let mut body = json!({ "uid": uid, "name": name });
            put(&mut body, "partner", partner.map(Value::from));
            let v = c.post("/v1/tenants", &body).await?;
            Ok(Output::fields(
                v,
                &["id", "uid", "name", "partner", "created_at"],
            ))
        }
        Call::Tenant(TenantCmd::List(page)) => {
            let v = c.get("/v1/tenants", &page.query()).await?;
            Ok(Output::table(
                v,
                Table::new(&["id", "uid", "name", "partner"]),
            ))
        }
        Call::Endpoint(EndpointCmd::Create {
            tenant,
            url,
            types,
            description,
            body,
        }) => {
            let mut b = match body {
                Some(b) => parse_json("--body", &read_arg(&b)?)?,
                None => json!({}),
            };
            if !b.is_object() {
                return Err(Failure::Input("--body must be a JSON object".into()));
            }
            put(&mut b, "url", url.map(Value::from));
            if !types.is_empty() {
                put(&mut b, "event_types", Some(json!(types)));
            }
            put(&mut b, "description", description.map(Value::from));
            let v = c
                .post(&format!("/v1/tenants/{}/endpoints", seg(&tenant)), &b)
                .await?;
            Ok(Output::fields(
                v,
                &["id", "url", "event_types", "enabled", "secret"],
            ))
        }
        Call::Endpoint(EndpointCmd::List { tenant, page }) => {
            let v = c
                .get(
                    &format!("/v1/tenants/{}/endpoints", seg(&tenant)),
                    &page.query(),
                )
                .await?;
            Ok(Output::table(
                v,
                Table::new(&["id", "url", "enabled", "event_types", "description"]),
            ))
        }
        Call::Endpoint(EndpointCmd::Show { tenant, id }) => {
            let v = c
                .get(
                    &format!("/v1/tenants/{}/endpoints/{}", seg(&tenant), seg(&id)),
                    &[],
                )
                .await?;
            Ok(Output::fields(
                v,
                &[
                    "id",
                    "url",
                    "description",
                    "enabled",
                    "disabled_reason",
                    "event_types",
                    "auth",
                    "policy",
                    "created_at",
                ],
            ))
        }
        Call::Endpoint(EndpointCmd::Test {
            tenant,
            id,
            event_type,
            payload,
        }) => {
            let mut body = json!({});
            put(&mut body, "type", event_type.map(Value::from));
            put(
                &mut body,
                "payload",
                payload
                    .map(|p| read_arg(&p).and_then(|s| parse_json("--payload", &s)))
                    .transpose()?,
            );
            let v = c
                .post(
                    &format!("/v1/tenants/{}/endpoints/{}/test", seg(&tenant), seg(&id)),
                    &body,
                )
                .await?;
            Ok(Output::fields(
                v,
                &[
                    "id",
                    "type",
                    "succeeded",
                    "attempt.status_code",
                    "attempt.error",
                    "attempt.duration_ms",
                    "attempt.response_snippet",
                ],
            ))
        }
        Call::Event(EventCmd::Publish {
            tenant,
            event_type,
            file,
            data,
            idempotency_key,
        }) => {
            let text = match (file, data) {
                (Some(f), _) => std::fs::read_to_string(&f)
                    .map_err(|e| Failure::Input(format!("cannot read {}: {e}", f.display())))?,
                (None, Some(d)) => d,
                (None, None) => read_arg("-")?,
            };
            let mut body = json!({ "type": event_type, "payload": parse_json("payload", &text)? });
            put(
                &mut body,
                "idempotency_key",
                idempotency_key.map(Value::from),
            );
            let v = c
                .post(&format!("/v1/tenants/{}/events", seg(&tenant)), &body)
                .await?;
            let n = v["deliveries"].as_array().map_or(0, Vec::len);
            Ok(Output {
                human: format!(
                    "{}\n",
                    table::fields(&v, &["id", "type", "created_at"])
                        .trim_end()
                        .to_owned()
                        + &format!("\ndeliveries  {n}")
                ),
                json: v,
            })
        }
        Call::Deliveries(DeliveriesCmd::List {
            tenant,
            endpoint,
            status,
            event_type,
            page,
        }) => {
            let mut q = page.query();
            if let Some(s) = status {
                q.push(("status", s));
            }
            if let Some(t) = event_type {
                q.push(("type", t));
            }
            let v = c
                .get(
                    &format!(
                        "/v1/tenants/{}/endpoints/{}/deliveries",
                        seg(&tenant),
                        seg(&endpoint)
                    ),
                    &q,
                )
                .await?;
            Ok(Output::table(
                v,
                Table::new(&[
                    "id",
                    "event",
                    "event_type",
                    "status",
                    "attempt_count",
                    "last_status_code",
                    "next_attempt_at",
                ]),
            ))
        }
        Call::Key(KeyCmd::Create {
            tenant,
            partner,
            name,
        }) => {
            let mut body = json!({ "name": name });
            put(&mut body, "tenant", tenant.map(Value::from));
            put(&mut body, "partner", partner.map(Value::from));
            let v = c.post("/v1/api-keys", &body).await?;
            Ok(Output::fields(
                v,
                &["id", "key", "tenant", "partner", "name"],
            ))
        }
    }
}

/// Sets `key` on a JSON object when `value` is given.
fn put(obj: &mut Value, key: &str, value: Option<Value>) {
    if let (Some(v), Some(m)) = (value, obj.as_object_mut()) {
        m.insert(key.to_owned(), v);
    }
}

fn parse_json(what: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::Input(format!("{what} is not valid JSON: {e}")))
}

/// `-` reads stdin, `@path` a file, anything else is the value itself.
fn read_arg(arg: &str) -> Result<String, Failure> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::Input(format!("cannot read stdin: {e}")))?;
        return Ok(s);
    }
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::Input(format!("cannot read {path}: {e}"))),
        None => Ok(arg.to_owned()),
    }
}

/// One path segment, percent-encoded.
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
