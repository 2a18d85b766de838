//! Keeping a connection URL's password out of errors, logs and `Debug` output.

/// The secrets of a connection URL (its password, as written and percent-decoded), found
/// without a URL parser, which may be what failed: every message of a store passes through
/// [`Secrets::scrub`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Secrets(Vec<String>);

/// What a secret becomes in a message.
const REDACTED: &str = "<password>";

impl Secrets {
    /// The passwords of `url`: `scheme://user:password@host/...`, a `password=` query
    /// parameter, or libpq's `password=...` key-value form.
    pub(crate) fn of_url(url: &str) -> Secrets {
        let mut secrets = Secrets::default();
        match url.split_once("://") {
            Some((_, rest)) => {
                let authority = rest.split(['/', '?']).next().unwrap_or("");
                if let Some((userinfo, _)) = authority.rsplit_once('@') {
                    if let Some((_, password)) = userinfo.split_once(':') {
                        secrets.add(password);
                    }
                }
                if let Some((_, query)) = rest.split_once('?') {
                    for pair in query.split('&') {
                        if let Some(password) = pair.strip_prefix("password=") {
                            secrets.add(password);
                        }
                    }
                }
            }
            None => {
                let mut words = url.split_whitespace();
                while let Some(word) = words.next() {
                    if let Some(value) = word.strip_prefix("password") {
                        // `password=x`, `password= x`, `password =x` or `password = x`.
                        let mut value = value.trim_start_matches('=');
                        while value.is_empty() {
                            match words.next() {
                                Some(next) => value = next.trim_start_matches('='),
                                None => break,
                            }
                        }
                        secrets.add(value.trim_matches('\''));
                    }
                }
            }
        }
        secrets
    }

    /// Adds a secret, as written and percent-decoded. Secrets shorter than 4 characters are not
    /// kept: replacing them would garble messages more than it hides.
    pub(crate) fn add(&mut self, secret: &str) {
        for secret in [secret.to_owned(), percent_decode(secret)] {
            if secret.len() >= 4 && !self.0.contains(&secret) {
                self.0.push(secret);
            }
        }
    }

    /// `message` with every secret replaced.
    pub(crate) fn scrub(&self, message: &str) -> String {
        let mut message = message.to_owned();
        for secret in &self.0 {
            message = message.replace(secret.as_str(), REDACTED);
        }
        message
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, hex) {
            (b'%', Some(decoded_byte)) => {
                decoded.push(decoded_byte);
                i += 3;
            }
            _ => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::Secrets;

    #[test]
    fn passwords_are_found_in_every_form_of_url_and_scrubbed() {
        for url in [
            "postgres://app:s3cr%21t-pw@db/app",
            "redis://:s3cr%21t-pw@127.0.0.1:6379/0",
            "postgresql://app@db/app?sslmode=require&password=s3cr%21t-pw",
            "host=db user=app password=s3cr%21t-pw dbname=app",
            "host=db password = 's3cr%21t-pw'",
        ] {
            let secrets = Secrets::of_url(url);
            let message = format!("cannot connect to {url}; s3cr!t-pw was refused");
            let scrubbed = secrets.scrub(&message);
            assert!(!scrubbed.contains("s3cr"), "{url}: {scrubbed}");
            assert!(scrubbed.contains("<password>"), "{url}: {scrubbed}");
        }
        assert_eq!(Secrets::of_url("redis://127.0.0.1/").scrub("a b"), "a b");
    }
}
