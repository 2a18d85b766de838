//! Headless Chromium driven through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`): JSON messages, each ended by a NUL byte, that the browser reads
//! from its descriptor 3 and writes to its descriptor 4. No websocket and no CDP crate: a
//! shell hands the browser our pipes as those descriptors, and `serde_json` does the rest.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

/// How long to wait for one answer or event: a watchdog, not synchronisation.
const PATIENCE: Duration = Duration::from_secs(60);

/// One page (tab) of a headless Chromium of the test's own.
pub(crate) struct Browser {
    child: Child,
    to_browser: ChildStdin,
    from_browser: mpsc::Receiver<Value>,
    /// Events read while waiting for an answer, oldest first.
    events: VecDeque<Value>,
    next_id: u64,
    /// The page's session (flat mode: its messages carry its id).
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `program` headless with a fresh profile, its messages on stderr written to `log`,
    /// and opens a blank page in it.
    pub(crate) fn start(program: &str, log: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("a browser profile");
        let log = std::fs::File::create(log).expect("the browser's log");
        let mut child = Command::new("sh")
            // The pipes become the browser's descriptors 3 and 4; it reads nothing else.
            .args([
                "-c",
                "exec \"$0\" \"$@\" 3<&0 4>&1 0</dev/null 1>&2",
                program,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--window-size=1280,900",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("chromium starts");
        let to_browser = child.stdin.take().expect("the browser's input");
        let mut from = BufReader::new(child.stdout.take().expect("the browser's output"));
        let (tell, from_browser) = mpsc::channel();
        std::thread::spawn(move || loop {
            let mut message = Vec::new();
            match from.read_until(0, &mut message) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    message.pop();
                    let value = serde_json::from_slice(&message).expect("the browser sends JSON");
                    if tell.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            to_browser,
            from_browser,
            events: VecDeque::new(),
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.send(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let attached = browser.send(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser.call("Page.enable", json!({}));
        browser
    }

    /// Sends a command, to the page's `session` or to the browser, and returns its result.
    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("a command serialises");
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .and_then(|()| self.to_browser.flush())
            .expect("the browser reads its commands");
        loop {
            let message = self.receive(method);
            if message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    panic!("the browser refused {method}: {error}");
                }
                return message["result"].clone();
            }
            if message.get("method").is_some() {
                self.events.push_back(message);
            }
        }
    }

    fn receive(&mut self, awaited: &str) -> Value {
        self.from_browser
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|error| panic!("no word from the browser about {awaited}: {error}"))
    }

    /// Sends a command to the page.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
    }

    /// Waits for the page's event `method` (dropping the events before it); returns its params.
    fn wait_for(&mut self, method: &str) -> Value {
        while let Some(event) = self.events.pop_front() {
            if event["method"] == json!(method) {
                return event["params"].clone();
            }
        }
        loop {
            let message = self.receive(method);
            if message["method"] == json!(method) && message["sessionId"] == json!(self.session) {
                return message["params"].clone();
            }
        }
    }

    /// Loads `url` and waits until it has loaded.
    pub(crate) fn go_to(&mut self, url: &str) {
        self.events.clear();
        let navigated = self.call("Page.navigate", json!({ "url": url }));
        if let Some(error) = navigated.get("errorText") {
            panic!("the browser could not load {url}: {error}");
        }
        self.wait_for("Page.loadEventFired");
    }

    /// Runs `script` in the page; returns its value.
    pub(crate) fn eval(&mut self, script: &str) -> Value {
        let evaluated = self.call(
            "Runtime.evaluate",
            json!({ "expression": script, "returnByValue": true }),
        );
        if let Some(exception) = evaluated.get("exceptionDetails") {
            panic!("`{script}` threw in the page: {exception}");
        }
        evaluated["result"]["value"].clone()
    }

    /// Runs `script`, which leaves the page (submits a form, follows a link), and waits until
    /// the next page has loaded.
    pub(crate) fn leave_with(&mut self, script: &str) {
        self.events.clear();
        self.eval(script);
        self.wait_for("Page.loadEventFired");
    }

    /// Clicks the element `selector` finds (there must be one), and waits for the page it
    /// leads to.
    pub(crate) fn click(&mut self, selector: &str) {
        let found = serde_json::to_string(selector).expect("a selector serialises");
        self.leave_with(&format!(
            "(() => {{ const element = document.querySelector({found}); \
             if (!element) throw new Error('nothing matches ' + {found}); element.click(); }})()"
        ));
    }

    /// Types `text` into the field `selector` finds.
    pub(crate) fn fill(&mut self, selector: &str, text: &str) {
        let found = serde_json::to_string(selector).expect("a selector serialises");
        let text = serde_json::to_string(text).expect("a text serialises");
        self.eval(&format!(
            "(() => {{ const field = document.querySelector({found}); \
             if (!field) throw new Error('nothing matches ' + {found}); field.value = {text}; }})()"
        ));
    }

    /// The page's address.
    pub(crate) fn location(&mut self) -> String {
        self.eval("location.href")
            .as_str()
            .expect("an address")
            .to_owned()
    }

    /// The page's DOM, as HTML, once its scripts ran.
    pub(crate) fn html(&mut self) -> String {
        self.eval("document.documentElement.outerHTML")
            .as_str()
            .expect("the page's HTML")
            .to_owned()
    }

    /// Writes a PNG of the page (its viewport) to `path`.
    pub(crate) fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("a screenshot"))
            .expect("the screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::write(path, png).expect("the screenshot is written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the browser ends its helper processes with it; killing is the fallback.
        self.next_id += 1;
        let close = json!({ "id": self.next_id, "method": "Browser.close" });
        let mut bytes = serde_json::to_vec(&close).unwrap_or_default();
        bytes.push(0);
        let _ = self.to_browser.write_all(&bytes);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            // Its output ends when it is gone; what it says until then is dropped.
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.from_browser.recv_timeout(left) {
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    break;
                }
            }
        }
        let _ = self.child.wait();
    }
}
