//! Every way a parameter can take an event field: `&str` from `String`, `&T`, an owned clone,
//! `&[T]` from `Vec<T>`, `Option<&T>` and `Option<&str>` from `Option<..>`, a `mut` binding.
use emitter::{listener, Event};

#[derive(Event)]
pub struct UserCreated {
    pub email: String,
    pub id: u64,
    pub tags: Vec<String>,
    pub nickname: Option<String>,
    pub referrer: Option<u64>,
    pub location: (i32, i32),
}

#[listener(events = [UserCreated])]
async fn borrowed_str(email: &str) {
    let _ = email.len();
}

#[listener(events = [UserCreated])]
async fn borrowed(email: &String, id: &u64, tags: &Vec<String>, location: &(i32, i32)) {
    let _ = (email, id, tags, location);
}

#[listener(events = [UserCreated])]
async fn owned(email: String, id: u64, tags: Vec<String>, location: (i32, i32)) {
    let _ = (email, id, tags, location);
}

#[listener(events = [UserCreated])]
async fn slice(tags: &[String]) {
    let _ = tags.first();
}

#[listener(events = [UserCreated])]
async fn options(nickname: Option<&str>, referrer: Option<&u64>) {
    let _ = (nickname, referrer);
}

#[listener(events = [UserCreated])]
async fn whole_options(nickname: &Option<String>, referrer: Option<u64>) {
    let _ = (nickname, referrer);
}

#[listener(events = [UserCreated])]
async fn mutable_binding(mut email: String) {
    email.push('!');
}

fn main() {}
