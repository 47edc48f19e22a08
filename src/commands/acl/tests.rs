//! The ACL commands through their handlers, and the AUTH / NOPERM gates through dispatch,
//! with Redis 7.0.15's replies.

use crate::commands::context::ClientState;
use crate::commands::dispatch::execute;
use crate::commands::test_support::{Harness, NOW_MS};
use crate::resp::Reply;
use crate::server::state::ServerState;
use bytes::Bytes;

fn bulk_text(r: &Reply) -> String {
    match r {
        Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

fn list(h: &mut Harness) -> Vec<String> {
    match h.ok(&["acl", "list"]) {
        Reply::Array(items) => items.iter().map(bulk_text).collect(),
        other => panic!("ACL LIST replied {other:?}"),
    }
}

#[test]
fn list_shows_the_default_user_and_new_users_in_name_order() {
    let mut h = Harness::new();
    assert_eq!(list(&mut h), ["user default on nopass ~* &* +@all"]);
    h.ok(&["acl", "setuser", "alice"]);
    assert_eq!(
        list(&mut h),
        [
            "user alice off resetchannels -@all",
            "user default on nopass ~* &* +@all"
        ]
    );
    assert_eq!(
        h.ok(&["acl", "users"]),
        Reply::Array(vec![Reply::bulk_str("alice"), Reply::bulk_str("default")])
    );
}

#[test]
fn getuser_has_redis_fields_and_null_for_unknown_users() {
    let mut h = Harness::new();
    assert!(h.is_null(&["acl", "getuser", "nobody"]));
    h.ok(&[
        "acl",
        "setuser",
        "bob",
        "on",
        ">p1pp0",
        "~cached:*",
        "+get",
        "(+set ~x)",
    ]);
    let Reply::Map(fields) = h.ok(&["acl", "getuser", "bob"]) else {
        panic!("GETUSER is a map")
    };
    let names: Vec<String> = fields.iter().map(|(k, _)| bulk_text(k)).collect();
    assert_eq!(
        names,
        [
            "flags",
            "passwords",
            "commands",
            "keys",
            "channels",
            "selectors"
        ]
    );
    assert_eq!(fields[0].1, Reply::Set(vec![Reply::bulk_str("on")]));
    assert_eq!(
        fields[1].1,
        Reply::Array(vec![Reply::bulk_str(
            "2d9c75273d72b32df726fb545c8a4edc719f0a95a6fd993950b10c474ad9c927"
        )])
    );
    assert_eq!(bulk_text(&fields[2].1), "-@all +get");
    assert_eq!(bulk_text(&fields[3].1), "~cached:*");
    assert_eq!(bulk_text(&fields[4].1), "");
    assert_eq!(
        fields[5].1,
        Reply::Array(vec![Reply::Map(vec![
            (Reply::bulk_str("commands"), Reply::bulk_str("-@all +set")),
            (Reply::bulk_str("keys"), Reply::bulk_str("~x")),
            (Reply::bulk_str("channels"), Reply::bulk_str("")),
        ])])
    );
}

#[test]
fn setuser_errors_carry_the_err_prefix() {
    let mut h = Harness::new();
    assert_eq!(
        h.err(&["acl", "setuser", "x", "bogus"]),
        "ERR Error in ACL SETUSER modifier 'bogus': Syntax error"
    );
    assert_eq!(
        h.err(&["acl", "setuser", "a b"]),
        "ERR Usernames can't contain spaces or null characters"
    );
}

#[test]
fn deluser_counts_removed_users_and_protects_default() {
    let mut h = Harness::new();
    h.ok(&["acl", "setuser", "a"]);
    h.ok(&["acl", "setuser", "b"]);
    assert_eq!(
        h.err(&["acl", "deluser", "a", "default"]),
        "ERR The 'default' user cannot be removed"
    );
    assert_eq!(h.int(&["acl", "deluser", "a", "b", "c"]), 2);
    assert_eq!(h.int(&["acl", "deluser", "a"]), 0);
}

#[test]
fn whoami_cat_and_genpass() {
    let mut h = Harness::new();
    assert_eq!(h.bulk(&["acl", "whoami"]), b"default");
    let Reply::Array(cats) = h.ok(&["acl", "cat"]) else {
        panic!("ACL CAT is an array")
    };
    assert_eq!(cats.len(), 21);
    assert_eq!(cats[0], Reply::bulk_str("keyspace"));
    assert_eq!(
        h.err(&["acl", "cat", "nope"]),
        "ERR Unknown category 'nope'"
    );
    let Reply::Array(geo) = h.ok(&["acl", "cat", "geo"]) else {
        panic!("ACL CAT geo is an array")
    };
    assert!(geo.contains(&Reply::bulk_str("geoadd")));
    assert_eq!(h.bulk(&["acl", "genpass"]).len(), 64);
    assert_eq!(h.bulk(&["acl", "genpass", "5"]).len(), 2);
    assert_eq!(
        h.err(&["acl", "genpass", "0"]),
        "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"
    );
}

#[test]
fn dryrun_explains_refusals_in_redis_words() {
    let mut h = Harness::new();
    h.ok(&["acl", "setuser", "bob", "on", "~cached:*", "+get"]);
    assert_eq!(
        h.ok(&["acl", "dryrun", "bob", "get", "cached:1"]),
        Reply::OK
    );
    assert_eq!(
        h.bulk(&["acl", "dryrun", "bob", "get", "other"]),
        b"This user has no permissions to access the 'other' key"
    );
    assert_eq!(
        h.bulk(&["acl", "dryrun", "bob", "set", "a", "b"]),
        b"This user has no permissions to run the 'set' command"
    );
    assert_eq!(
        h.err(&["acl", "dryrun", "nobody", "get", "a"]),
        "ERR User 'nobody' not found"
    );
    assert_eq!(
        h.err(&["acl", "dryrun", "bob", "nocmd"]),
        "ERR Command 'nocmd' not found"
    );
    assert_eq!(
        h.err(&["acl", "dryrun", "bob", "get"]),
        "ERR wrong number of arguments for 'get' command"
    );
}

#[test]
fn load_and_save_refuse_without_an_acl_file() {
    let mut h = Harness::new();
    assert!(h
        .err(&["acl", "load"])
        .starts_with("ERR This Redis instance is not configured to use an ACL file."));
}

// ---- through dispatch ----

struct Conn {
    server: ServerState,
    client: ClientState,
}

impl Conn {
    fn new() -> Conn {
        let server = ServerState::for_tests();
        let authenticated = !server.acl.auth_required();
        let client = ClientState::new(
            7,
            "127.0.0.1:2".into(),
            "127.0.0.1:6379".into(),
            9,
            NOW_MS,
            authenticated,
        );
        Conn { server, client }
    }

    fn run(&mut self, argv: &[&str]) -> Reply {
        let args: Vec<Bytes> = argv
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        execute(&self.server, &mut self.client, &args, NOW_MS * 1000, true).reply
    }

    fn err(&mut self, argv: &[&str]) -> String {
        match self.run(argv) {
            Reply::Error(e) => e.text().to_string(),
            other => panic!("{argv:?} replied {other:?}, expected an error"),
        }
    }
}

#[test]
fn a_restricted_user_gets_noperm_for_commands_and_keys() {
    let mut c = Conn::new();
    let setup = [
        "acl",
        "setuser",
        "alice",
        "on",
        ">p1pp0",
        "~cached:*",
        "+get",
        "+info",
        "+config",
    ];
    assert_eq!(c.run(&setup), Reply::OK);
    assert_eq!(c.run(&["auth", "alice", "p1pp0"]), Reply::OK);
    assert_eq!(
        c.err(&["set", "a", "b"]),
        "NOPERM this user has no permissions to run the 'set' command"
    );
    assert_eq!(
        c.err(&["get", "other"]),
        "NOPERM this user has no permissions to access one of the keys used as arguments"
    );
    assert_eq!(c.run(&["get", "cached:1"]), Reply::Null);
    assert_eq!(
        c.err(&["acl", "whoami"]),
        "NOPERM this user has no permissions to run the 'acl|whoami' command"
    );
    // Newest first: the subcommand, the key, the command.
    let log = c.server.acl.log.lock();
    let objects: Vec<&[u8]> = log.entries().iter().map(|e| &e.object[..]).collect();
    assert_eq!(objects, [&b"acl|whoami"[..], b"other", b"set"]);
    assert_eq!(log.entries()[1].reason, crate::acl::LogReason::Key);
    assert_eq!(log.entries()[1].context, "toplevel");
}

#[test]
fn wrong_passwords_are_refused_and_logged() {
    let mut c = Conn::new();
    c.run(&["acl", "setuser", "alice", "on", ">pw", "+@all"]);
    assert_eq!(
        c.err(&["auth", "alice", "nope"]),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(
        c.err(&["auth", "nobody", "nope"]),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    let log = c.server.acl.log.lock();
    assert_eq!(log.entries()[0].reason, crate::acl::LogReason::Auth);
    assert_eq!(log.entries()[0].username, b"nobody");
    assert_eq!(log.entries()[0].object, b"auth");
}

#[test]
fn rule_changes_apply_to_authenticated_clients_on_their_next_command() {
    let mut c = Conn::new();
    c.run(&["acl", "setuser", "alice", "on", "nopass", "+@all", "~*"]);
    c.run(&["auth", "alice", "x"]);
    assert_eq!(c.run(&["set", "k", "v"]), Reply::OK);
    c.server
        .acl
        .modify(|u| u.set_user(b"alice", &[b"-set"]))
        .unwrap();
    assert_eq!(
        c.err(&["set", "k", "v"]),
        "NOPERM this user has no permissions to run the 'set' command"
    );
}

#[test]
fn a_deleted_users_clients_fall_back_to_an_unauthenticated_default() {
    let mut c = Conn::new();
    c.run(&["config", "set", "requirepass", "pw"]);
    c.run(&["acl", "setuser", "alice", "on", "nopass", "+@all", "~*"]);
    c.run(&["auth", "alice", "x"]);
    c.server.acl.modify(|u| u.delete(b"alice"));
    assert_eq!(c.err(&["get", "k"]), "NOAUTH Authentication required.");
}

#[test]
fn requirepass_drives_the_default_user() {
    let mut c = Conn::new();
    assert_eq!(
        c.run(&["config", "set", "requirepass", "s3cret"]),
        Reply::OK
    );
    assert!(c.server.acl.auth_required());
    let mut other = ClientState::new(8, "a".into(), "b".into(), 1, NOW_MS, false);
    std::mem::swap(&mut c.client, &mut other);
    assert_eq!(c.err(&["get", "k"]), "NOAUTH Authentication required.");
    assert_eq!(c.run(&["auth", "s3cret"]), Reply::OK);
    assert_eq!(c.run(&["get", "k"]), Reply::Null);
    assert_eq!(c.run(&["config", "set", "requirepass", ""]), Reply::OK);
    assert!(!c.server.acl.auth_required());
    assert_eq!(
        c.err(&["auth", "x"]),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
}

#[test]
fn channels_outside_the_patterns_are_refused() {
    let mut c = Conn::new();
    c.run(&["acl", "setuser", "p", "on", "nopass", "+@all", "&news.*"]);
    c.run(&["auth", "p", "x"]);
    assert_eq!(c.run(&["publish", "news.a", "m"]), Reply::Int(0));
    assert_eq!(
        c.err(&["publish", "other", "m"]),
        "NOPERM this user has no permissions to access one of the channels used as arguments"
    );
}

#[test]
fn exec_refuses_queued_commands_the_rules_no_longer_allow() {
    let mut c = Conn::new();
    c.run(&["acl", "setuser", "alice", "on", "nopass", "+@all", "~*"]);
    c.run(&["auth", "alice", "x"]);
    assert_eq!(c.run(&["multi"]), Reply::OK);
    c.run(&["set", "k", "v"]);
    c.run(&["get", "k"]);
    c.server
        .acl
        .modify(|u| u.set_user(b"alice", &[b"-set"]))
        .unwrap();
    let Reply::Array(replies) = c.run(&["exec"]) else {
        panic!("EXEC replies with an array")
    };
    assert_eq!(
        replies[0],
        Reply::Error(crate::resp::ErrorReply::fixed(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand"
        ))
    );
    assert_eq!(replies[1], Reply::Null);
}

#[test]
fn hello_auth_logs_in_as_a_user() {
    let mut c = Conn::new();
    c.run(&["acl", "setuser", "alice", "on", ">pw", "+@all", "~*"]);
    assert_eq!(
        c.err(&["hello", "3", "auth", "alice", "nope"]),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert!(matches!(
        c.run(&["hello", "3", "auth", "alice", "pw"]),
        Reply::Map(_)
    ));
    assert_eq!(c.run(&["acl", "whoami"]), Reply::bulk_str("alice"));
    assert_eq!(c.run(&["reset"]), Reply::simple("RESET"));
    assert_eq!(c.run(&["acl", "whoami"]), Reply::bulk_str("default"));
}

#[test]
fn client_kill_user_knows_acl_users() {
    let mut c = Conn::new();
    assert_eq!(
        c.err(&["client", "kill", "user", "alice"]),
        "ERR No such user 'alice'"
    );
    c.run(&["acl", "setuser", "alice"]);
    assert_eq!(c.run(&["client", "kill", "user", "alice"]), Reply::Int(0));
}
