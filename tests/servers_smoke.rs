//! The test servers of `emitter_tests::servers` answer, come back on the same port after a
//! restart, keep across it what their options promise, and die with their handle.

use std::net::{Ipv4Addr, TcpStream};

use emitter_tests::servers::{Postgres, Redis, RedisOptions};

fn refuses_connections(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err()
}

#[test]
fn redis_answers_and_comes_back_after_restart() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/", redis.port()));
    assert_eq!(redis.command(&["PING"]), "+PONG\r\n");

    redis.stop();
    assert!(
        refuses_connections(redis.port()),
        "redis-server still runs after stop()"
    );
    redis.restart();
    assert_eq!(redis.command(&["PING"]), "+PONG\r\n");
}

#[test]
fn redis_by_default_forgets_everything_on_restart() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    assert_eq!(redis.command(&["SET", "greeting", "hello"]), "+OK\r\n");
    redis.restart();
    assert_eq!(redis.command(&["GET", "greeting"]), "$-1\r\n");
}

#[test]
fn redis_append_only_keeps_acknowledged_writes_across_a_kill() {
    let Some(mut redis) = Redis::start_with(RedisOptions { append_only: true }) else {
        return;
    };
    assert_eq!(redis.command(&["SET", "greeting", "hello"]), "+OK\r\n");
    redis.restart();
    assert_eq!(redis.command(&["GET", "greeting"]), "$5\r\nhello\r\n");
}

#[test]
fn postgres_answers_and_keeps_committed_rows_across_restart() {
    let Some(mut postgres) = Postgres::start() else {
        return;
    };
    assert_eq!(
        postgres.url(),
        format!("postgres://emitter@127.0.0.1:{}/postgres", postgres.port())
    );
    assert_eq!(
        postgres.psql("select current_user || ' ' || current_database()"),
        "emitter postgres"
    );
    postgres.psql("create table kept (n int); insert into kept values (1)");

    postgres.stop();
    assert!(
        refuses_connections(postgres.port()),
        "postgres still runs after stop()"
    );
    postgres.restart();
    assert_eq!(postgres.psql("select n from kept"), "1");
}

#[test]
fn dropping_a_server_stops_it() {
    let Some(redis) = Redis::start() else { return };
    let Some(postgres) = Postgres::start() else {
        return;
    };
    let ports = [redis.port(), postgres.port()];
    drop(redis);
    drop(postgres);
    for port in ports {
        assert!(
            refuses_connections(port),
            "a server on port {port} outlived its handle"
        );
    }
}
