//! Where the attribute sits. In an `impl` or `trait` block a function is reached through its
//! type, so it cannot be registered, and the items the attribute adds beside it do not compile
//! there. The tokens the attribute receives do not say where they come from; the source file
//! does. Anything uncertain (no file on disk, code written by another macro) reads as a free
//! function, which only loses the better error message.

/// A block that holds methods and associated functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Block {
    Impl,
    Trait,
}

/// The `impl` or `trait` block the attribute being expanded sits in, if any.
pub(super) fn enclosing_block() -> Option<Block> {
    let span = proc_macro::Span::call_site();
    let source = std::fs::read_to_string(span.local_file()?).ok()?;
    let offset = byte_offset(&source, span.line(), span.column())?;
    innermost_block(&source[..offset])
}

/// The byte offset of a 1-based line and column, the column counted in characters.
fn byte_offset(source: &str, line: usize, column: usize) -> Option<usize> {
    let start = if line <= 1 {
        0
    } else {
        source.match_indices('\n').nth(line - 2)?.0 + 1
    };
    let rest = source.get(start..)?;
    let within = rest
        .char_indices()
        .nth(column.checked_sub(1)?)
        .map_or(rest.len(), |(at, _)| at);
    Some(start + within)
}

/// The kind of the innermost block still open at the end of `source`: `Impl` or `Trait` if it is
/// an `impl` or `trait` body, `None` for any other block or none.
fn innermost_block(source: &str) -> Option<Block> {
    let mut open: Vec<Option<Block>> = Vec::new();
    // The keyword that decides what the next `{` opens, from the tokens since the last `;`, `{`
    // or `}`: the first of `fn`, `impl` and `trait` (`fn f() -> impl Trait {` is a function).
    let mut header: Option<&str> = None;
    let mut lexer = Lexer::new(source);
    while let Some(token) = lexer.next_token() {
        match token {
            Token::Open => open.push(match header.take() {
                Some("impl") => Some(Block::Impl),
                Some("trait") => Some(Block::Trait),
                _ => None,
            }),
            Token::Close => {
                open.pop();
                header = None;
            }
            Token::Semicolon => header = None,
            Token::Ident(word) => {
                if header.is_none() && matches!(word, "fn" | "impl" | "trait") {
                    header = Some(word);
                }
            }
        }
    }
    open.pop().flatten()
}

enum Token<'a> {
    Open,
    Close,
    Semicolon,
    Ident(&'a str),
}

/// Just enough of Rust's lexer to find braces and keywords: comments, strings, characters and
/// lifetimes are skipped.
struct Lexer<'a> {
    source: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    fn new(source: &'a str) -> Self {
        Lexer { source, at: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.source[self.at..]
    }

    fn bump(&mut self, bytes: usize) {
        self.at = (self.at + bytes).min(self.source.len());
    }

    fn next_token(&mut self) -> Option<Token<'a>> {
        loop {
            let rest = self.rest();
            let c = rest.chars().next()?;
            if rest.starts_with("//") {
                self.bump(rest.find('\n').unwrap_or(rest.len()));
            } else if rest.starts_with("/*") {
                self.skip_block_comment();
            } else if let Some(hashes) = raw_string_start(rest) {
                self.skip_raw_string(hashes);
            } else if c == '"' || rest.starts_with("b\"") || rest.starts_with("c\"") {
                self.bump(rest.find('"').map_or(rest.len(), |quote| quote + 1));
                self.skip_string();
            } else if c == '\'' || rest.starts_with("b'") {
                self.skip_char_or_lifetime();
            } else if c == '{' {
                self.bump(1);
                return Some(Token::Open);
            } else if c == '}' {
                self.bump(1);
                return Some(Token::Close);
            } else if c == ';' {
                self.bump(1);
                return Some(Token::Semicolon);
            } else if c.is_alphabetic() || c == '_' {
                let len = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                self.bump(len);
                return Some(Token::Ident(&rest[..len]));
            } else {
                self.bump(c.len_utf8());
            }
        }
    }

    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while !self.rest().is_empty() {
            let rest = self.rest();
            if rest.starts_with("/*") {
                depth += 1;
                self.bump(2);
            } else if rest.starts_with("*/") {
                self.bump(2);
                depth -= 1;
                if depth == 0 {
                    return;
                }
            } else {
                self.bump(rest.chars().next().map_or(1, char::len_utf8));
            }
        }
    }

    /// After the opening quote: up to and past the closing one.
    fn skip_string(&mut self) {
        let mut escaped = false;
        for (at, c) in self.rest().char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    self.bump(at + 1);
                    return;
                }
                _ => {}
            }
        }
        self.at = self.source.len();
    }

    fn skip_raw_string(&mut self, hashes: usize) {
        let rest = self.rest();
        let Some(quote) = rest.find('"') else {
            self.at = self.source.len();
            return;
        };
        let close = format!("\"{}", "#".repeat(hashes));
        let body = &rest[quote + 1..];
        let end = body
            .find(&close)
            .map_or(rest.len(), |end| quote + 1 + end + close.len());
        self.bump(end);
    }

    /// `'a'`, `'\n'`, `b'x'` are characters; `'a` and `'static` are lifetimes.
    fn skip_char_or_lifetime(&mut self) {
        let rest = self.rest();
        let quote = rest.find('\'').map_or(0, |quote| quote + 1);
        let after = &rest[quote..];
        let mut chars = after.char_indices();
        match chars.next() {
            Some((_, '\\')) => {
                let end = after[1..].find('\'').map_or(after.len(), |end| end + 2);
                self.bump(quote + end);
            }
            Some((_, c)) => {
                let next = chars.next();
                if next.is_some_and(|(_, next)| next == '\'') {
                    self.bump(quote + c.len_utf8() + 1);
                } else {
                    self.bump(quote);
                }
            }
            None => self.bump(quote),
        }
    }
}

/// The number of `#` of a raw string starting `source` (`r"`, `r#"`, `br"`, `cr#"`).
fn raw_string_start(source: &str) -> Option<usize> {
    let rest = source
        .strip_prefix("br")
        .or_else(|| source.strip_prefix("cr"))
        .or_else(|| source.strip_prefix('r'))?;
    let hashes = rest.len() - rest.trim_start_matches('#').len();
    rest[hashes..].starts_with('"').then_some(hashes)
}

#[cfg(test)]
mod tests {
    use super::{byte_offset, innermost_block, Block};

    fn block_at_marker(source: &str) -> Option<Block> {
        let offset = source.find("@@").expect("marker");
        innermost_block(&source[..offset])
    }

    #[test]
    fn finds_impl_and_trait_blocks() {
        assert_eq!(
            block_at_marker("struct A;\nimpl A {\n    @@fn f() {}\n}"),
            Some(Block::Impl)
        );
        assert_eq!(
            block_at_marker("impl<T: Fn() -> u8> X for Y<T> where T: Copy { @@ }"),
            Some(Block::Impl)
        );
        assert_eq!(
            block_at_marker("#[cfg(test)]\nunsafe impl Send for A { @@ }"),
            Some(Block::Impl)
        );
        assert_eq!(
            block_at_marker("pub trait Handlers { fn a(); @@ }"),
            Some(Block::Trait)
        );
    }

    #[test]
    fn other_blocks_are_not_impl_blocks() {
        assert_eq!(block_at_marker("@@fn f() {}"), None);
        assert_eq!(block_at_marker("mod listeners {\n    @@\n}"), None);
        assert_eq!(block_at_marker("fn f() -> impl Trait { @@ }"), None);
        assert_eq!(block_at_marker("fn f(x: impl Display) { @@ }"), None);
        assert_eq!(block_at_marker("impl A { fn f() { @@ } }"), None);
        assert_eq!(block_at_marker("impl A { fn f() {} }\n@@"), None);
        assert_eq!(block_at_marker("const _: () = { @@ };"), None);
    }

    #[test]
    fn skips_comments_strings_and_characters() {
        assert_eq!(block_at_marker("// impl A {\n@@"), None);
        assert_eq!(block_at_marker("/* impl A { /* nested */ */ @@"), None);
        assert_eq!(
            block_at_marker("const S: &str = \"impl A { \\\" \"; @@"),
            None
        );
        assert_eq!(
            block_at_marker("const S: &str = r#\"impl \"A\" {\"#; @@"),
            None
        );
        assert_eq!(block_at_marker("const C: char = '{'; @@"), None);
        assert_eq!(
            block_at_marker("impl<'a> A<'a> { const C: char = '}'; @@ }"),
            Some(Block::Impl)
        );
        assert_eq!(
            block_at_marker("impl A { fn f(s: &'static str) {} @@ }"),
            Some(Block::Impl)
        );
    }

    #[test]
    fn converts_lines_and_columns_to_offsets() {
        let source = "ab\ncdé\nf";
        assert_eq!(byte_offset(source, 1, 1), Some(0));
        assert_eq!(byte_offset(source, 2, 3), Some(5));
        assert_eq!(byte_offset(source, 3, 1), Some(8));
        assert_eq!(byte_offset(source, 4, 1), None);
    }
}
