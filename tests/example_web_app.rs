//! The `web_app` example, driven over HTTP on loopback: `POST /users` answers 201 while the
//! welcome mail is still held back, the mail then goes to the new user, and a body that is not a
//! user gets a 4xx and emits nothing.
//!
//! The test's mail client waits at a gate that the test opens only after it has the response, so
//! the order is forced, not timed.

#[expect(
    dead_code,
    reason = "the example's `main` is for `cargo run`; the tests call its functions"
)]
#[path = "../examples/web_app.rs"]
pub mod example;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use emitter::{BoxError, Emitter};
use example::{Mail, Mailer, SendMail, User, Users};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A mail client that reports every mail it is asked to send, then holds it until the gate opens.
struct GatedMailer {
    attempted: mpsc::UnboundedSender<Mail>,
    gate: watch::Receiver<bool>,
    sent: mpsc::UnboundedSender<Mail>,
}

impl SendMail for GatedMailer {
    fn send(&self, mail: Mail) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + '_>> {
        Box::pin(async move {
            self.attempted.send(mail.clone())?;
            self.gate.clone().wait_for(|open| *open).await?;
            self.sent.send(mail)?;
            Ok(())
        })
    }
}

/// The example's app served on an ephemeral loopback port, with a gated mail client.
struct Running {
    addr: SocketAddr,
    emitter: Emitter,
    users: Users,
    attempted: mpsc::UnboundedReceiver<Mail>,
    gate: watch::Sender<bool>,
    sent: mpsc::UnboundedReceiver<Mail>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start() -> Self {
        let (attempted_tx, attempted) = mpsc::unbounded_channel();
        let (sent_tx, sent) = mpsc::unbounded_channel();
        let (gate, gate_rx) = watch::channel(false);
        let mailer = Mailer::new(GatedMailer {
            attempted: attempted_tx,
            gate: gate_rx,
            sent: sent_tx,
        });
        let emitter = example::start_emitter(mailer).await.unwrap();
        let users = Users::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = example::app(emitter.clone(), users.clone());
        let server = tokio::spawn(axum::serve(listener, app).into_future());
        Running {
            addr,
            emitter,
            users,
            attempted,
            gate,
            sent,
            server,
        }
    }

    /// Sends `POST /users` from a blocking thread with a plain HTTP client, and returns the
    /// response's status and body.
    async fn post_users(&self, content_type: &'static str, body: &'static str) -> (u16, String) {
        let url = format!("http://{}/users", self.addr);
        tokio::task::spawn_blocking(move || {
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                // A watchdog, not synchronisation: were the response to wait for the listener
                // (which waits for the test), the request fails here instead of hanging.
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .new_agent();
            let mut response = agent
                .post(&url)
                .content_type(content_type)
                .send(body)
                .expect("POST /users got no response");
            let status = response.status().as_u16();
            (status, response.body_mut().read_to_string().unwrap())
        })
        .await
        .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[tokio::test]
async fn post_users_answers_201_before_the_welcome_mail_is_sent() {
    let mut running = Running::start().await;

    let (status, body) = running
        .post_users(
            "application/json",
            r#"{"email": "jane@example.com", "name": "Jane"}"#,
        )
        .await;

    // The gate is still closed, so the mail cannot have been sent: the response did not wait.
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        created,
        json!({"id": 1, "email": "jane@example.com", "name": "Jane"})
    );
    let jane = User {
        id: 1,
        email: "jane@example.com".to_owned(),
        name: "Jane".to_owned(),
    };
    assert_eq!(running.users.all(), [jane]);

    // The listener is running, held at the gate with the mail it was given.
    let welcome = Mail {
        to: "jane@example.com".to_owned(),
        subject: "Welcome, Jane!".to_owned(),
    };
    assert_eq!(running.attempted.recv().await, Some(welcome.clone()));

    running.gate.send_replace(true);
    running.emitter.shutdown().await.unwrap();
    assert_eq!(running.sent.recv().await, Some(welcome));
    assert!(running.sent.try_recv().is_err(), "one user, so one mail");
}

#[tokio::test]
async fn a_body_that_is_not_a_new_user_gets_a_4xx_and_emits_nothing() {
    let mut running = Running::start().await;
    let cases = [
        ("application/json", r#"{"email": "jane@exa"#, 400),
        ("application/json", r#"{"email": "jane@example.com"}"#, 422),
        ("application/json", r#"{"email": 42, "name": "Jane"}"#, 422),
        (
            "text/plain",
            r#"{"email": "jane@example.com", "name": "Jane"}"#,
            415,
        ),
    ];

    for (content_type, body, expected) in cases {
        let (status, answer) = running.post_users(content_type, body).await;
        assert_eq!(status, expected, "{content_type} {body}: {answer}");
    }

    // Had anything been emitted, shutdown would wait for its listener, which would report the
    // mail it was asked to send.
    running.gate.send_replace(true);
    running.emitter.shutdown().await.unwrap();
    assert!(
        running.attempted.try_recv().is_err(),
        "a welcome mail was attempted"
    );
    assert!(running.users.all().is_empty(), "{:?}", running.users.all());
}
