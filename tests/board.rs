//! The operator's board (`emitter::board`, feature `board`) on a SQLite store with a worker
//! running. Over HTTP: the pages show what is stored, a dead letter is found by filter and
//! shown, and replaying it needs the token (a header, or a login session and its CSRF token);
//! once replayed, the worker delivers it; every other write (cancel, discard, by filter, pause,
//! resume, an orphan's discard and rehome) is refused without the token and leaves the store as
//! it was, and does what it says with it. A read-only board refuses writes. In headless
//! Chromium, driven through the DevTools protocol: the same story as an operator clicks it,
//! with a screenshot of each page.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use emitter::board::Board;
use emitter::durable::admin::{DeliveryState, Filter, ListenerCounts, Query};
use emitter::durable::sqlite::SqliteStore;
use emitter::durable::{Admin, Durable, DurableConfig, NewEmit, Route, Setup, Store, StoredEvent};
use emitter::{listener, listeners, EmitId, Emitter, Event, State};
use tokio::sync::mpsc;

#[path = "board/browser.rs"]
mod browser;
use browser::Browser;

const TOKEN: &str = "a-long-random-board-token-for-the-test";
const LISTENER: &str = "board.send_mail";

#[derive(Event, Debug, Clone)]
#[event(id = "board.mail_due")]
pub struct MailDue {
    pub to: String,
}

#[listener(events = [MailDue], name = "board.send_mail")]
async fn send_mail(to: String, State(sent): State<mpsc::UnboundedSender<String>>) {
    let _ = sent.send(to);
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        // A watchdog, not synchronisation.
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

struct Reply {
    status: u16,
    body: String,
    cookie: Option<String>,
}

fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = response.expect("the board answers");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::to_owned);
    Reply {
        status: response.status().as_u16(),
        body: response.body_mut().read_to_string().expect("a text body"),
        cookie,
    }
}

fn get(url: &str, cookie: Option<&str>) -> Reply {
    let mut request = agent().get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    reply(request.call())
}

fn post(url: &str, headers: &[(&str, &str)], form: &str) -> Reply {
    let mut request = agent()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply(request.send(form))
}

/// The CSRF token a page's forms carry.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|csrf| !csrf.is_empty())
        .unwrap_or_else(|| panic!("no CSRF token on the page: {page}"))
        .to_owned()
}

/// A browser's session on the board: its cookie, and the CSRF token its forms carry.
struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    /// Logs in to `board` with the token, as its login form does.
    fn open(board: &str) -> Session {
        let login = post(&format!("{board}/login"), &[], &format!("token={TOKEN}"));
        assert_eq!(login.status, 303, "{}", login.body);
        let cookie = login.cookie.expect("a session cookie");
        let page = get(&format!("{board}/"), Some(&cookie));
        let csrf = csrf_of(&page.body);
        Session { cookie, csrf }
    }

    /// Posts a form with `fields` to `url`, as the board's pages do.
    fn submit(&self, url: &str, fields: &str) -> Reply {
        post(
            url,
            &[("cookie", &self.cookie)],
            &format!("csrf={}&{fields}", self.csrf),
        )
    }

    /// Posts `fields` to `url` without the token, with a wrong one, and from this session
    /// without its CSRF token: each is refused.
    fn assert_refused(&self, url: &str, fields: &str) {
        let attempts = [
            ("no token", post(url, &[], fields)),
            (
                "a wrong token",
                post(url, &[("authorization", "Bearer not-the-token")], fields),
            ),
            (
                "no CSRF token",
                post(url, &[("cookie", &self.cookie)], fields),
            ),
        ];
        for (what, refused) in attempts {
            assert!(
                [401, 403].contains(&refused.status),
                "a write to {url} with {what} was answered {}: {}",
                refused.status,
                refused.body
            );
        }
    }
}

/// Posts `fields` to `url` with the token in a header, as a script does.
fn post_with_token(url: &str, fields: &str) -> Reply {
    post(
        url,
        &[("authorization", &format!("Bearer {TOKEN}"))],
        fields,
    )
}

/// Serves `router` on a free port of loopback; returns its address.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

/// A SQLite store holding one dead letter, a worker delivering from it, and two boards over it
/// (one that takes the token, one read-only), served on loopback.
struct Fixture {
    rt: tokio::runtime::Runtime,
    store: SqliteStore,
    dead_id: String,
    board: String,
    read_only: String,
    delivered: mpsc::UnboundedReceiver<String>,
    emitter: Emitter,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("events.db");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let store = SqliteStore::open(&path).expect("the store opens");

        // A mail that failed for good, as a worker would have left it.
        let dead_id = rt.block_on(async {
            let setup = Setup::new(
                vec![Route {
                    event_id: "board.mail_due",
                    listeners: vec![LISTENER],
                }],
                Duration::from_secs(3600),
            );
            store.open(&setup).await.expect("opened");
            let event = StoredEvent::new(
                "board.mail_due".to_owned(),
                EmitId::from_u128(7),
                std::time::SystemTime::now(),
                br#"{"to":"jane@example.com"}"#.to_vec(),
            );
            let now = std::time::SystemTime::now();
            store
                .insert(&[NewEmit::new(event, vec![LISTENER], now, None)])
                .await
                .expect("stored");
            let claimed = store
                .claim("w0", &[LISTENER], 1, Duration::from_secs(60))
                .await
                .expect("claimed");
            store
                .dead_letter(&claimed[0].receipt, "the mail server said no")
                .await
                .expect("dead-lettered");
            let dead = store
                .deliveries(&Query::new(DeliveryState::Dead))
                .await
                .expect("listed");
            dead.deliveries[0].id.clone()
        });

        let (sent, delivered) = mpsc::unbounded_channel::<String>();
        let (board, read_only, emitter) = rt.block_on(async {
            let backend = Durable::with_config(
                SqliteStore::open(&path).expect("the store opens"),
                DurableConfig::default().poll_interval(Duration::from_millis(50)),
            );
            let emitter = Emitter::builder()
                .listeners(listeners![send_mail])
                .state(sent)
                .backend(backend.clone())
                .start()
                .await
                .expect("the worker starts");
            let board = serve(Board::new(backend.clone()).allow_writes(TOKEN).router()).await;
            let read_only = serve(emitter::board::router(backend)).await;
            (board, read_only, emitter)
        });

        Fixture {
            rt,
            store,
            dead_id,
            board,
            read_only,
            delivered,
            emitter,
            _dir: dir,
        }
    }
}

/// A listener no worker runs: a deploy removed it, its deliveries stayed.
const REMOVED: &str = "board.removed";

impl Fixture {
    /// Stores a mail to `to` for `listener`, due at `run_at`; returns its delivery's id.
    fn store_mail(&self, listener: &'static str, to: &str, run_at: SystemTime) -> String {
        static EMITS: AtomicU64 = AtomicU64::new(100);
        let emit = EmitId::from_u128(EMITS.fetch_add(1, Ordering::Relaxed).into());
        let state = if run_at > SystemTime::now() {
            DeliveryState::Scheduled
        } else {
            DeliveryState::Waiting
        };
        self.rt.block_on(async {
            let payload = serde_json::to_vec(&serde_json::json!({ "to": to })).expect("JSON");
            let event = StoredEvent::new("board.mail_due".to_owned(), emit, run_at, payload);
            self.store
                .insert(&[NewEmit::new(event, vec![listener], run_at, None)])
                .await
                .expect("stored");
            let query = Query::new(state).filter(Filter::new().listener(listener).emit_id(emit));
            let page = self.store.deliveries(&query).await.expect("listed");
            assert_eq!(page.deliveries.len(), 1, "{page:?}");
            page.deliveries[0].id.clone()
        })
    }

    /// `listener`'s deliveries by state.
    fn counts(&self, listener: &str) -> ListenerCounts {
        self.rt
            .block_on(self.store.listener_counts())
            .expect("counted")
            .into_iter()
            .find(|counts| counts.listener == listener)
            .unwrap_or_else(|| ListenerCounts::new(listener))
    }

    /// The listeners paused.
    fn paused(&self) -> Vec<String> {
        let paused = self.rt.block_on(self.store.paused()).expect("listed");
        paused.into_iter().map(|paused| paused.listener).collect()
    }

    /// Waits for the worker to deliver a mail; returns to whom.
    fn delivered(&mut self) -> String {
        self.rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(60), self.delivered.recv()).await
            })
            .expect("a mail is delivered")
            .expect("the worker runs")
    }

    fn stop(self) {
        self.rt
            .block_on(self.emitter.shutdown())
            .expect("the worker stops");
    }
}

#[test]
fn cancelling_a_scheduled_delivery_needs_the_token() {
    let fixture = Fixture::start();
    let later = SystemTime::now() + Duration::from_secs(3600);
    let id = fixture.store_mail(LISTENER, "later@example.com", later);
    let session = Session::open(&fixture.board);
    let cancel = format!("{}/deliveries/{id}/cancel", fixture.board);

    session.assert_refused(&cancel, "");
    assert_eq!(
        fixture.counts(LISTENER).scheduled,
        1,
        "a refused cancel changed the store"
    );
    let cancelled = session.submit(&cancel, &format!("back=/deliveries/{id}"));
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    assert_eq!(fixture.counts(LISTENER).scheduled, 0);
    let again = post_with_token(&cancel, "");
    assert_eq!(again.status, 404, "{}", again.body);
    fixture.stop();
}

#[test]
fn discarding_a_dead_letter_needs_the_token() {
    let fixture = Fixture::start();
    let session = Session::open(&fixture.board);
    let discard = format!("{}/deliveries/{}/discard", fixture.board, fixture.dead_id);

    session.assert_refused(&discard, "");
    assert_eq!(
        fixture.counts(LISTENER).dead,
        1,
        "a refused discard changed the store"
    );
    let discarded = session.submit(&discard, "back=/");
    assert_eq!(discarded.status, 303, "{}", discarded.body);
    assert_eq!(fixture.counts(LISTENER).dead, 0);
    let again = post_with_token(&discard, "");
    assert_eq!(again.status, 404, "{}", again.body);
    fixture.stop();
}

#[test]
fn replaying_and_discarding_dead_letters_by_filter_need_the_token() {
    let mut fixture = Fixture::start();
    let session = Session::open(&fixture.board);
    let replay = format!("{}/dead/replay", fixture.board);
    let discard = format!("{}/dead/discard", fixture.board);
    let mine = format!("listener={LISTENER}");

    session.assert_refused(&replay, &mine);
    session.assert_refused(&discard, &mine);
    assert_eq!(
        fixture.counts(LISTENER).dead,
        1,
        "a refused write changed the store"
    );
    let none = post_with_token(&discard, "listener=board.nobody");
    assert_eq!(
        (none.status, none.body.as_str()),
        (200, "discarded 0 dead letters\n")
    );
    let replayed = session.submit(&replay, &format!("{mine}&back=/deliveries?state=dead"));
    assert_eq!(replayed.status, 303, "{}", replayed.body);
    assert_eq!(fixture.delivered(), "jane@example.com");
    fixture.stop();
}

#[test]
fn pausing_and_resuming_a_listener_need_the_token() {
    let mut fixture = Fixture::start();
    let session = Session::open(&fixture.board);
    let pause = format!("{}/listeners/{LISTENER}/pause", fixture.board);
    let resume = format!("{}/listeners/{LISTENER}/resume", fixture.board);

    session.assert_refused(&pause, "");
    assert!(fixture.paused().is_empty(), "a refused pause paused");
    let paused = session.submit(&pause, "back=/");
    assert_eq!(paused.status, 303, "{}", paused.body);
    assert_eq!(fixture.paused(), [LISTENER]);

    // Stored while paused, delivered once resumed.
    fixture.store_mail(LISTENER, "held@example.com", SystemTime::now());
    session.assert_refused(&resume, "");
    assert_eq!(fixture.paused(), [LISTENER], "a refused resume resumed");
    let resumed = post_with_token(&resume, "");
    assert_eq!(
        (resumed.status, resumed.body.as_str()),
        (200, "resumed board.send_mail\n")
    );
    assert!(fixture.paused().is_empty());
    assert_eq!(fixture.delivered(), "held@example.com");
    fixture.stop();
}

#[test]
fn rehoming_an_orphans_deliveries_needs_the_token() {
    let mut fixture = Fixture::start();
    fixture.store_mail(REMOVED, "moved@example.com", SystemTime::now());
    let session = Session::open(&fixture.board);
    let rehome = format!("{}/listeners/{REMOVED}/rehome", fixture.board);
    let to = format!("to={LISTENER}");

    session.assert_refused(&rehome, &to);
    assert_eq!(
        fixture.counts(REMOVED).waiting,
        1,
        "a refused rehome changed the store"
    );
    let nowhere = post_with_token(&rehome, "");
    assert_eq!(nowhere.status, 400, "{}", nowhere.body);
    let rehomed = session.submit(&rehome, &format!("{to}&back=/"));
    assert_eq!(rehomed.status, 303, "{}", rehomed.body);
    assert_eq!(fixture.counts(REMOVED).total(), 0);
    assert_eq!(fixture.delivered(), "moved@example.com");
    fixture.stop();
}

#[test]
fn discarding_an_orphans_deliveries_needs_the_token() {
    let fixture = Fixture::start();
    fixture.store_mail(REMOVED, "gone@example.com", SystemTime::now());
    let later = SystemTime::now() + Duration::from_secs(3600);
    fixture.store_mail(REMOVED, "gone-later@example.com", later);
    let session = Session::open(&fixture.board);
    let discard = format!("{}/listeners/{REMOVED}/discard", fixture.board);

    session.assert_refused(&discard, "");
    assert_eq!(
        fixture.counts(REMOVED).total(),
        2,
        "a refused discard changed the store"
    );
    let discarded = post_with_token(&discard, "");
    assert_eq!(
        (discarded.status, discarded.body.as_str()),
        (200, "discarded 2 deliveries of board.removed\n")
    );
    assert_eq!(fixture.counts(REMOVED).total(), 0);
    assert_eq!(
        fixture.counts(LISTENER).dead,
        1,
        "another listener's dead letter was discarded"
    );
    fixture.stop();
}

#[test]
fn a_dead_letter_is_found_shown_and_replayed_with_the_token_only() {
    let Fixture {
        rt,
        store,
        dead_id,
        board,
        read_only,
        mut delivered,
        emitter,
        _dir,
    } = Fixture::start();
    let overview = get(&format!("{board}/"), None);
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains(LISTENER), "{}", overview.body);

    let listing = get(
        &format!("{board}/deliveries?state=dead&listener={LISTENER}"),
        None,
    );
    assert_eq!(listing.status, 200);
    assert!(listing.body.contains(&dead_id), "{}", listing.body);
    assert!(listing.body.contains("the mail server said no"));
    let other = get(
        &format!("{board}/deliveries?state=dead&listener=nobody"),
        None,
    );
    assert!(
        !other.body.contains("the mail server said no"),
        "the filter is ignored"
    );

    let page = get(&format!("{board}/deliveries/{dead_id}"), None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("jane@example.com"), "{}", page.body);
    assert_eq!(get(&format!("{board}/deliveries/nope"), None).status, 404);

    let replay = format!("{board}/deliveries/{dead_id}/replay");
    for refused in [
        post(&replay, &[], ""),
        post(&replay, &[("authorization", "Bearer not-the-token")], ""),
        post(
            &format!("{read_only}/deliveries/{dead_id}/replay"),
            &[("authorization", &format!("Bearer {TOKEN}"))],
            "",
        ),
    ] {
        assert!(
            [401, 403].contains(&refused.status),
            "a write without the token was answered {}: {}",
            refused.status,
            refused.body
        );
    }

    // A browser: a wrong token is refused; the right one opens a session, whose forms carry
    // its CSRF token; a form without it is refused.
    assert_eq!(
        post(&format!("{board}/login"), &[], "token=wrong").status,
        401
    );
    let login = post(&format!("{board}/login"), &[], &format!("token={TOKEN}"));
    assert_eq!(login.status, 303, "{}", login.body);
    let cookie = login.cookie.expect("a session cookie");
    let page = get(&format!("{board}/deliveries/{dead_id}"), Some(&cookie));
    let csrf = csrf_of(&page.body);
    let forged = post(&replay, &[("cookie", &cookie)], "csrf=forged");
    assert_eq!(forged.status, 403, "{}", forged.body);
    rt.block_on(async {
        let dead = store.dead_letters(10).await.expect("listed");
        assert_eq!(dead.len(), 1, "a refused write changed the store");
    });
    let replayed = post(&replay, &[("cookie", &cookie)], &format!("csrf={csrf}"));
    assert_eq!(replayed.status, 303, "{}", replayed.body);

    let to = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), delivered.recv())
            .await
            .expect("the replayed mail is delivered")
    });
    assert_eq!(to.as_deref(), Some("jane@example.com"));
    rt.block_on(emitter.shutdown()).expect("the worker stops");
}

/// The browser the test drives: Chromium from Debian's packages (`scripts/test.sh` installs
/// it). `None` when it is missing and may be (without `EMITTER_REQUIRE_SERVERS=1`).
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"].into_iter().find(|name| {
        std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var("EMITTER_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "chromium not found on PATH, and EMITTER_REQUIRE_SERVERS=1 forbids skipping; run \
             `bash scripts/test.sh` (it installs it) to run this test"
        );
        eprintln!("*** SKIPPED: chromium is not installed ***");
    }
    found
}

/// The board in a real browser, driven as an operator would: the overview, a filter typed into
/// the listing's form, a click through to the dead letter, a replay posted without the token
/// (refused), then a login through the form and a press on the replay button; the worker
/// delivers the mail. A screenshot of each page is written under the test's output folder
/// (`target/tmp/board-screenshots/`) for a reviewer to look at.
#[test]
fn an_operator_replays_a_dead_letter_in_a_headless_browser() {
    let Some(program) = chromium() else { return };
    let Fixture {
        rt,
        store,
        dead_id,
        board,
        read_only: _,
        mut delivered,
        emitter,
        _dir,
    } = Fixture::start();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("board-screenshots");
    std::fs::create_dir_all(&shots).expect("the screenshots' folder");
    let mut browser = Browser::start(program, &shots.join("chromium.log"));

    browser.go_to(&format!("{board}/"));
    let overview = browser.html();
    assert!(overview.contains(LISTENER), "{overview}");
    assert!(overview.contains("<svg"), "no sparkline: {overview}");
    browser.screenshot(&shots.join("overview.png"));

    // The filter, through the listing's form: another listener's dead letters are not these.
    browser.go_to(&format!("{board}/deliveries"));
    browser.eval("document.querySelector('select[name=state]').value = 'dead'");
    browser.fill("form.filters input[name=listener]", "board.nobody");
    browser.click("form.filters button[type=submit]");
    let nobody = browser.html();
    assert!(
        browser.location().contains("listener=board.nobody"),
        "the filter was not submitted: {}",
        browser.location()
    );
    assert!(
        nobody.contains("No dead delivery matches") && !nobody.contains("the mail server said no"),
        "the filter is ignored: {nobody}"
    );
    browser.fill("form.filters input[name=listener]", LISTENER);
    browser.click("form.filters button[type=submit]");
    let listing = browser.html();
    assert!(
        listing.contains(&format!("href=\"/deliveries/{dead_id}\"")),
        "{listing}"
    );
    assert!(listing.contains("the mail server said no"), "{listing}");
    browser.screenshot(&shots.join("deliveries.png"));

    browser.click(&format!("a[href$=\"/deliveries/{dead_id}\"]"));
    let page = browser.html();
    assert!(page.contains("jane@example.com"), "{page}");
    assert!(
        page.contains("id=\"login-link\""),
        "writes are offered through the login: {page}"
    );
    browser.screenshot(&shots.join("dead-letter.png"));

    // A replay posted without the token (no session): refused, and the store unchanged.
    browser.leave_with(&format!(
        "(() => {{ const form = document.createElement('form'); form.method = 'post'; \
         form.action = '/deliveries/{dead_id}/replay'; document.body.append(form); \
         form.submit(); }})()"
    ));
    let refused = browser.html();
    assert!(refused.contains("id=\"refused\""), "{refused}");
    browser.screenshot(&shots.join("refused.png"));
    rt.block_on(async {
        let dead = store.dead_letters(10).await.expect("listed");
        assert_eq!(dead.len(), 1, "a refused write changed the store");
    });

    browser.go_to(&format!("{board}/deliveries/{dead_id}"));
    browser.click("#login-link");
    assert!(browser.html().contains("type=\"password\""));
    browser.fill("form.login input[name=token]", TOKEN);
    browser.screenshot(&shots.join("login.png"));
    browser.click("form.login button[type=submit]");
    browser.go_to(&format!("{board}/deliveries/{dead_id}"));
    browser.screenshot(&shots.join("dead-letter-logged-in.png"));
    browser.click(&format!(
        "form[action$=\"/deliveries/{dead_id}/replay\"] button"
    ));
    let after = browser.html();
    assert!(
        after.contains(&format!("replayed dead letter {dead_id}")),
        "{after}"
    );
    browser.screenshot(&shots.join("replayed.png"));

    let to = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), delivered.recv())
            .await
            .expect("the replayed mail is delivered")
    });
    assert_eq!(to.as_deref(), Some("jane@example.com"));
    println!("screenshots in {}", shots.display());
    drop(browser);
    rt.block_on(emitter.shutdown()).expect("the worker stops");
}
