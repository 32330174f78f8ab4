//! The one crate that speaks SQL. Everything distans keeps in ClickHouse is
//! read and written here, through typed functions: the client and its
//! settings ([`client`], [`database`]), the append-only migrations
//! ([`migrations`]) and the views re-created at every start ([`views`]),
//! the rows the sink inserts ([`rows`], [`insert`]), the reference data
//! ([`reference`]), the monthly aggregates ([`aggregates`]), the listing
//! register import ([`listing`]), the detector's review ([`review`]), the
//! report panels ([`panels`]) and the counts the operator commands wait on
//! ([`queries`]).
//!
//! SQL in this crate runs on ClickHouse 18.16 (what installs on a Debian
//! machine) and on current releases: see the invariants in ARCHITECTURE.md.
//! `make lint` checks that no other crate holds SQL or uses the clickhouse
//! crate (`deploy/lint/sql-only-in-store.sh`).

pub mod aggregates;
pub mod listing;
pub mod migrations;
pub mod panels;
pub mod queries;
pub mod reference;
pub mod review;
pub mod rows;
pub mod views;

pub use clickhouse::Client;
use distans_runtime::config::ClickHouseSettings;

/// What the ClickHouse client returns on failure: a transport error, a
/// timeout, or an exception in the server's response (`BadResponse`, whose
/// text carries `Code: N.`; see [`exception_code`]).
pub type Error = clickhouse::error::Error;

/// A client for the server, no database selected (for `CREATE DATABASE`).
/// `https://` urls use TLS (rustls) trusting the system's CA certificates
/// and those in `clickhouse.ca_file`.
pub fn client(settings: &ClickHouseSettings) -> Client {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build(connector(settings));
    Client::with_http_client(http)
        .with_url(&settings.url)
        .with_user(&settings.user)
        .with_password(settings.password.expose())
        // ClickHouse 18.16 (what installs here) lacks RowBinaryWithNamesAndTypes.
        .with_validation(false)
}

/// As the clickhouse crate's own client (keep-alive 60 s, idle connections
/// dropped after 2 s, before the server's 3 s), over HTTP or HTTPS: rustls
/// with the system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured) and
/// `clickhouse.ca_file`. The settings checks that file at load; should it
/// become unreadable since, the error is logged and the connection then
/// fails verification naming `clickhouse.ca_file` ([`misconfigured`]).
fn connector(
    settings: &ClickHouseSettings,
) -> hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector> {
    use hyper_util::client::legacy::connect::HttpConnector;
    use rustls_pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if !settings.ca_file.is_empty() {
        match rustls_pki_types::CertificateDer::pem_file_iter(&settings.ca_file) {
            Ok(certificates) => {
                for certificate in certificates {
                    match certificate.map_err(|e| e.to_string()).and_then(|c| roots.add(c).map_err(|e| e.to_string())) {
                        Ok(()) => {}
                        Err(error) => {
                            tracing::error!(ca_file = %settings.ca_file, %error, "clickhouse.ca_file: a certificate is not usable")
                        }
                    }
                }
            }
            Err(error) => tracing::error!(ca_file = %settings.ca_file, %error, "clickhouse.ca_file cannot be read"),
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = HttpConnector::new();
    tcp.set_keepalive(Some(std::time::Duration::from_secs(60)));
    tcp.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(tcp)
}

/// An error with every cause it carries, `: `-separated (the clickhouse
/// crate's network errors say only "client error (Connect)" at the top).
pub fn describe(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The setting to fix when ClickHouse cannot be reached because of the
/// client's settings, which no retry changes: the server's certificate is
/// not signed by a trusted CA (`clickhouse.ca_file`), does not name the
/// host (`clickhouse.url`), `https://` to a port that speaks plain HTTP or
/// the reverse (`clickhouse.url`), or the user or password is refused
/// (codes 192 UNKNOWN_USER, 193 WRONG_PASSWORD, 516 AUTHENTICATION_FAILED,
/// `src/Common/ErrorCodes.cpp`), or may not write (164 READONLY, 497
/// ACCESS_DENIED: `clickhouse.user`). `None` for everything else (an
/// outage).
pub fn misconfigured(error: &Error) -> Option<&'static str> {
    let text = describe(error);
    if let clickhouse::error::Error::BadResponse(message) = error {
        return match exception_code(message) {
            Some(192 | 193 | 516) => Some("clickhouse.user and clickhouse.password"),
            Some(164 | 497) => Some(
                "clickhouse.user: distans' own user must create and write tables in clickhouse.database \
                 (not readonly, not a BI user such as bi)",
            ),
            _ => None,
        };
    }
    if text.contains("NotValidForName") || text.contains("not valid for name") {
        Some("clickhouse.url (its host must be named in the server's certificate)")
    } else if text.contains("invalid peer certificate") {
        Some("clickhouse.ca_file (the CA that signs the server's certificate)")
    } else if text.contains("InvalidContentType") || text.contains("corrupt message") {
        Some("clickhouse.url (https:// for the server's https_port, http:// for its http_port)")
    } else {
        None
    }
}

/// Whether `error` says ClickHouse did not answer at all (a refused or
/// reset connection, a host name that does not resolve, a timeout): down,
/// or not at `clickhouse.url`. `false` for an answer, and for the client
/// misconfigurations [`misconfigured`] names.
pub fn unanswered(error: &Error) -> bool {
    matches!(error, clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut)
        && misconfigured(error).is_none()
}

/// What to tell an operator besides an error whose chain of causes
/// (`causes`, e.g. `anyhow::Error::chain`) holds a ClickHouse error that
/// did not answer ([`unanswered`]): the address used (`url`) and the
/// setting that holds it. `None` for any other error.
pub fn unanswered_hint<'a>(
    mut causes: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>,
    url: &str,
) -> Option<String> {
    causes.any(|cause| cause.downcast_ref::<Error>().is_some_and(unanswered)).then(|| {
        format!(
            "ClickHouse does not answer at {url}: is it running, and is that its address? \
             (clickhouse.url, or DISTANS__CLICKHOUSE__URL)"
        )
    })
}

/// Why a part of a service that asks ClickHouse (`what`: "the review") is
/// not ready after `result`: a reason for `/readyz` when ClickHouse did not
/// answer ([`unanswered`]), else `None` (an answer, even an error, shows
/// it up).
pub fn unanswered_reason<T>(what: &str, result: &Result<T, Error>) -> Option<String> {
    let error = result.as_ref().err().filter(|e| unanswered(e))?;
    Some(format!("{what} gets no answer from clickhouse ({error}); retrying"))
}

/// Whether ClickHouse answers a `SELECT 1` within `within`: an operator's
/// command asks this first, so that an address where something else
/// listens and never answers (a broker's port) is an error in seconds, not
/// a hang. Errors: the server's, or `TimedOut` (which [`unanswered`]
/// counts).
pub async fn answers_within(db: &Client, within: std::time::Duration) -> Result<(), Error> {
    match tokio::time::timeout(within, db.query("SELECT 1").fetch_one::<u8>()).await {
        Ok(answered) => answered.map(|_| ()),
        Err(_) => Err(clickhouse::error::Error::TimedOut),
    }
}

/// A client for the configured database: what every reader and writer uses.
pub fn database(settings: &ClickHouseSettings) -> Client {
    client(settings).with_database(&settings.database)
}

/// ClickHouse error codes that mean the data itself is bad: retrying the
/// same rows cannot succeed. Codes from ClickHouse's
/// `src/Common/ErrorCodes.cpp` (the same numbers in 18.16 and today).
const DATA_ERROR_CODES: [u32; 12] = [
    6,   // CANNOT_PARSE_TEXT
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
];

/// ClickHouse error codes that refuse this client or this statement,
/// whatever rows it sends: the credentials, the grants, the database, or a
/// statement this server cannot run. Retrying gives the same answer until
/// an operator changes something. (`UNKNOWN_TABLE` is not here: a view is
/// briefly missing while another service re-creates it at its start.)
const REFUSED_CODES: [u32; 11] = [
    46,  // UNKNOWN_FUNCTION: SQL this server version lacks
    62,  // SYNTAX_ERROR
    81,  // UNKNOWN_DATABASE
    164, // READONLY: the user may not write
    192, // UNKNOWN_USER
    193, // WRONG_PASSWORD
    194, // REQUIRED_PASSWORD
    195, // IP_ADDRESS_NOT_ALLOWED
    291, // DATABASE_ACCESS_DENIED
    497, // ACCESS_DENIED
    516, // AUTHENTICATION_FAILED (what current servers answer for 192-194)
];

/// What a ClickHouse error means for the caller: the one classification of
/// ClickHouse errors (as `distans_runtime::kafka::classify_produce_error`
/// is of produce errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The rows are bad ([`DATA_ERROR_CODES`]): not retried; a writer
    /// isolates the offending rows and dead-letters them with the message.
    Data,
    /// The server refuses this client or statement ([`REFUSED_CODES`]):
    /// not retried, and not the rows' fault: the caller stops with the
    /// error, so that good rows never become dead letters.
    Refused,
    /// Anything else: connection refused or reset, timeouts, an HTTP error
    /// without an exception, and every other exception, such as
    /// `TOO_MANY_SIMULTANEOUS_QUERIES` (202), `MEMORY_LIMIT_EXCEEDED` (241)
    /// and `TOO_MANY_PARTS` (252). Retried with backoff: an outage is waited
    /// out, never turned into dead letters.
    Transient,
}

impl ErrorKind {
    /// The class for `distans_runtime::retry`: only [`ErrorKind::Transient`]
    /// is retried.
    pub fn retry_class(self) -> distans_runtime::retry::ErrorClass {
        match self {
            ErrorKind::Transient => distans_runtime::retry::ErrorClass::Transient,
            ErrorKind::Data | ErrorKind::Refused => distans_runtime::retry::ErrorClass::Permanent,
        }
    }
}

/// Classifies a ClickHouse error by the exception code in the server's
/// answer ([`exception_code`]), or as refused when the client's TLS
/// settings are wrong ([`misconfigured`]); any other error is transient.
pub fn classify_error(error: &Error) -> ErrorKind {
    let code = match error {
        clickhouse::error::Error::BadResponse(message) => exception_code(message),
        _ => None,
    };
    match code {
        Some(code) if DATA_ERROR_CODES.contains(&code) => ErrorKind::Data,
        Some(code) if REFUSED_CODES.contains(&code) => ErrorKind::Refused,
        // A certificate or a scheme the settings got wrong: no retry helps.
        _ if misconfigured(error).is_some() => ErrorKind::Refused,
        _ => ErrorKind::Transient,
    }
}

/// The `Code: N.` of a ClickHouse exception in an error response (18.16
/// writes `Code: N, e.displayText() = …`, current servers `Code: N. DB::…`).
pub fn exception_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Whether ClickHouse rejected the data itself ([`ErrorKind::Data`]): the
/// rows must not be retried.
pub fn is_data_error(error: &Error) -> bool {
    classify_error(error) == ErrorKind::Data
}

/// A row type that can be inserted: owned ([`insert`]), or borrowing
/// ([`insert_rows`], as [`rows::LineRow`] borrows its line's strings).
pub trait Row: clickhouse::RowWrite + for<'a> clickhouse::Row<Value<'a>: Send + Sync> + Send + Sync {}
impl<R: clickhouse::RowWrite + for<'a> clickhouse::Row<Value<'a>: Send + Sync> + Send + Sync> Row for R {}

/// Row type `R`'s value that borrows for `'a` (`LineRow<'a>` for
/// `R = LineRow<'static>`; an owned row is itself).
pub type RowValue<'a, R> = <R as clickhouse::Row>::Value<'a>;

/// Inserts `rows` into `table` in one INSERT (RowBinary), once: no retry.
/// `Err` is a transient failure or, when [`is_data_error`] holds, rows
/// ClickHouse refused.
pub async fn insert<R: Row + clickhouse::RowOwned>(db: &Client, table: &str, rows: &[R]) -> Result<(), Error> {
    insert_rows::<R>(db, table, rows).await
}

/// [`insert`] for rows that borrow: `R` names the row type (`LineRow` at
/// any lifetime), `rows` are its values at theirs.
pub async fn insert_rows<R: Row>(db: &Client, table: &str, rows: &[RowValue<'_, R>]) -> Result<(), Error> {
    let mut insert = db.insert::<R>(table).await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}

/// Splits a SQL file into statements: comment lines dropped, split on `;`.
/// (No statement here has a `;` inside a string literal.)
pub fn statements(sql: &str) -> Vec<String> {
    let without_comments: String =
        sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    without_comments.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unanswered_clickhouse_is_named_with_its_setting() {
        let db = Client::default().with_url("http://127.0.0.1:1");
        let refused = db.query("SELECT 1").execute().await.expect_err("nothing listens on port 1");
        // As `anyhow`'s context would wrap it: the ClickHouse error is a cause.
        #[derive(Debug, thiserror::Error)]
        #[error("cannot list the regions")]
        struct Context(#[source] Error);
        let outer = Context(refused);
        let causes = || std::iter::successors(Some(&outer as &(dyn std::error::Error + 'static)), |e| e.source());
        let hint = unanswered_hint(causes(), "http://127.0.0.1:1").expect("a hint");
        assert!(hint.contains("at http://127.0.0.1:1") && hint.contains("clickhouse.url"), "{hint}");
        let answered = Error::BadResponse("Code: 60. Unknown table".into());
        assert_eq!(unanswered_hint(std::iter::once(&answered as &(dyn std::error::Error + 'static)), "u"), None);
    }

    /// Something that takes the connection and never answers (a broker's
    /// port given as `clickhouse.url`): `distans report` hung on it.
    #[tokio::test]
    async fn a_server_that_never_answers_is_unanswered_in_time() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("an address").port();
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().take(4).collect();
            std::thread::sleep(std::time::Duration::from_secs(10));
            drop(held);
        });
        let db = Client::default().with_url(format!("http://127.0.0.1:{port}"));
        let error = answers_within(&db, std::time::Duration::from_millis(500)).await.expect_err("no answer");
        assert!(unanswered(&error), "{error}");
    }

    #[test]
    fn certificates_and_logins_refused_name_the_setting() {
        use clickhouse::error::Error::{BadResponse, Network};
        let network = |text: &str| Network(Box::new(std::io::Error::other(text.to_string())));
        let cases = [
            (network("invalid peer certificate: UnknownIssuer"), Some("clickhouse.ca_file")),
            (network("invalid peer certificate: NotValidForName"), Some("clickhouse.url")),
            (
                network("invalid peer certificate: certificate not valid for name \"127.0.0.1\"; certificate is only valid for DnsName(\"localhost\")"),
                Some("clickhouse.url"),
            ),
            (network("received corrupt message of type InvalidContentType"), Some("clickhouse.url")),
            (BadResponse("Code: 516. DB::Exception: default: Authentication failed".into()), Some("clickhouse.user")),
            (
                BadResponse("Code: 193, e.displayText() = DB::Exception: Wrong password for user default".into()),
                Some("clickhouse.user"),
            ),
            (
                BadResponse("Code: 164. DB::Exception: bi: Cannot create database in readonly mode. (READONLY)".into()),
                Some("clickhouse.user: distans' own user must create and write tables"),
            ),
            (
                BadResponse("Code: 497. DB::Exception: bi: Not enough privileges. (ACCESS_DENIED)".into()),
                Some("clickhouse.user"),
            ),
            (network("tcp connect error: Connection refused (os error 111)"), None),
            (BadResponse("Code: 252. DB::Exception: Too many parts".into()), None),
        ];
        for (error, setting) in cases {
            let found = misconfigured(&error);
            match setting {
                Some(setting) => assert!(found.is_some_and(|f| f.starts_with(setting)), "{error}: {found:?}"),
                None => assert_eq!(found, None, "{error}"),
            }
        }
    }

    #[test]
    fn exception_codes() {
        let cases = [
            ("Code: 27. DB::Exception: Cannot parse input", Some(27)),
            ("bad response: Code: 252, e.displayText() = DB::Exception: Too many parts", Some(252)),
            ("connection refused", None),
            ("Code: x", None),
        ];
        for (message, expected) in cases {
            assert_eq!(exception_code(message), expected, "{message}");
        }
        assert!(is_data_error(&Error::BadResponse("Code: 53. DB::Exception: Type mismatch".into())));
        assert!(!is_data_error(&Error::BadResponse("Code: 252. Too many parts".into())));
        assert!(!is_data_error(&Error::TimedOut));
    }

    /// (error, kind): the answers of 18.16 and of current servers.
    #[test]
    fn errors_are_data_refused_or_transient() {
        let bad = |text: &str| Error::BadResponse(text.to_string());
        let cases = [
            // The rows: dead letters.
            (bad("Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected ( before: x"), ErrorKind::Data),
            (bad("Code: 321. DB::Exception: Value 70000 is out of range of Date"), ErrorKind::Data),
            // The client: stop with the error.
            (bad("Code: 193, e.displayText() = DB::Exception: Wrong password for user default, e.what() = DB::Exception"), ErrorKind::Refused),
            (bad("Code: 516. DB::Exception: default: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)"), ErrorKind::Refused),
            (bad("Code: 192, e.displayText() = DB::Exception: Unknown user distans"), ErrorKind::Refused),
            (bad("Code: 81. DB::Exception: Database distans does not exist. (UNKNOWN_DATABASE)"), ErrorKind::Refused),
            (bad("Code: 497. DB::Exception: bi: Not enough privileges. To execute this query, it's necessary to have the grant INSERT ON distans.anomalies. (ACCESS_DENIED)"), ErrorKind::Refused),
            (bad("Code: 164, e.displayText() = DB::Exception: Cannot execute query in readonly mode"), ErrorKind::Refused),
            (bad("Code: 62. DB::Exception: Syntax error: failed at position 1"), ErrorKind::Refused),
            // An outage or overload: retried.
            (bad("Code: 202, e.displayText() = DB::Exception: Too many simultaneous queries. Maximum: 100"), ErrorKind::Transient),
            (bad("Code: 241. DB::Exception: Memory limit (for query) exceeded: would use 3.73 GiB. (MEMORY_LIMIT_EXCEEDED)"), ErrorKind::Transient),
            (bad("Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts"), ErrorKind::Transient),
            (bad("Code: 159. DB::Exception: Timeout exceeded: elapsed 30.1 seconds"), ErrorKind::Transient),
            (bad("Code: 60. DB::Exception: Table distans.report_cost_by_month doesn't exist"), ErrorKind::Transient),
            (bad("bad response: 502 Bad Gateway"), ErrorKind::Transient),
            (Error::TimedOut, ErrorKind::Transient),
        ];
        for (error, kind) in cases {
            assert_eq!(classify_error(&error), kind, "{error}");
        }
        use distans_runtime::retry::ErrorClass;
        assert_eq!(ErrorKind::Data.retry_class(), ErrorClass::Permanent);
        assert_eq!(ErrorKind::Refused.retry_class(), ErrorClass::Permanent);
        assert_eq!(ErrorKind::Transient.retry_class(), ErrorClass::Transient);
    }

    #[test]
    fn statements_drop_comments_and_split() {
        assert_eq!(statements("-- c\nCREATE A;\n\n-- d\nCREATE B;\n"), ["CREATE A", "CREATE B"]);
        assert!(statements("-- only a comment\n").is_empty());
    }
}
