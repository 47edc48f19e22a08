//! Specifications of the ACL rule language, the rule strings users describe back as, and the
//! permission checks, with texts taken from Redis 7.0.15.

use super::*;

fn user(rules: &[&str]) -> User {
    let mut users = Users::new(None);
    let raw: Vec<&[u8]> = rules.iter().map(|r| r.as_bytes()).collect();
    users.set_user(b"u", &raw).expect("rules are valid");
    (**users.get(b"u").unwrap()).clone()
}

fn set_err(rules: &[&str]) -> String {
    let mut users = Users::new(None);
    let raw: Vec<&[u8]> = rules.iter().map(|r| r.as_bytes()).collect();
    users.set_user(b"u", &raw).unwrap_err()
}

fn args(a: &[&str]) -> Vec<Bytes> {
    a.iter()
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect()
}

fn check(u: &User, a: &[&str]) -> Result<(), Denied> {
    let argv = args(a);
    let cmd = match table().lookup(&argv) {
        crate::commands::table::Lookup::Found(c) => c,
        _ => panic!("unknown command {a:?}"),
    };
    u.check(cmd, &argv)
}

#[test]
fn default_user_describes_as_redis_prints_it() {
    let users = Users::new(None);
    assert_eq!(users.default_user().describe(), "on nopass ~* &* +@all");
    assert!(users.default_user().all_allowed());
}

#[test]
fn requirepass_gives_the_default_user_exactly_that_password() {
    let users = Users::new(Some(b"s3cret"));
    let d = users.default_user();
    assert!(!d.nopass());
    assert_eq!(d.passwords(), &[hash_password(b"s3cret")]);
    assert!(users.authenticate(b"default", b"s3cret").is_some());
    assert!(users.authenticate(b"default", b"other").is_none());
}

#[test]
fn new_user_is_off_with_no_permissions() {
    assert_eq!(user(&[]).describe(), "off resetchannels -@all");
}

#[test]
fn reset_adds_sanitize_payload() {
    assert_eq!(
        user(&["on", "~*", "reset"]).describe(),
        "off sanitize-payload resetchannels -@all"
    );
}

#[test]
fn passwords_are_listed_as_sha256_hashes() {
    let u = user(&["on", ">p1pp0", "~cached:*", "+get"]);
    assert_eq!(
        u.describe(),
        "on #2d9c75273d72b32df726fb545c8a4edc719f0a95a6fd993950b10c474ad9c927 ~cached:* resetchannels -@all +get"
    );
}

#[test]
fn removing_a_password_by_text_or_hash() {
    let h = hash_password(b"b");
    let u = user(&[">a", ">b", "<a"]);
    assert_eq!(u.passwords(), std::slice::from_ref(&h));
    let u = user(&[">b", &format!("!{h}")]);
    assert!(u.passwords().is_empty());
}

#[test]
fn key_patterns_merge_permissions_and_print_with_prefixes() {
    let u = user(&["%R~foo", "%RW~bar", "%W~baz", "%R~baz"]);
    assert_eq!(u.describe(), "off %R~foo ~bar ~baz resetchannels -@all");
}

#[test]
fn plus_all_minus_one_command_keeps_future_commands() {
    assert_eq!(
        user(&["+@all", "-get"]).describe(),
        "off resetchannels +@all -get"
    );
}

#[test]
fn container_and_subcommand_rules_round_trip() {
    let u = user(&["+@all", "-config|set"]);
    assert_eq!(u.root().describe_commands(), "+@all -config|set");
    let u = user(&["-@all", "+config|get"]);
    assert_eq!(u.root().describe_commands(), "-@all +config|get");
}

#[test]
fn first_args_are_listed_after_the_command() {
    let u = user(&["+select|0", "+select|1"]);
    assert_eq!(u.root().describe_commands(), "-@all +select|0 +select|1");
}

#[test]
fn a_whole_category_is_printed_as_the_category() {
    assert_eq!(user(&["+@hash"]).root().describe_commands(), "-@all +@hash");
    assert_eq!(
        user(&["+@all", "-@dangerous"]).root().describe_commands(),
        "+@all -@dangerous"
    );
}

#[test]
fn selectors_print_in_parentheses() {
    let u = user(&["+@all", "-get", "&ch", "(+set ~x)"]);
    assert_eq!(
        u.describe(),
        "off resetchannels &ch +@all -get (~x resetchannels -@all +set)"
    );
    assert_eq!(u.extra_selectors().len(), 1);
    assert_eq!(
        user(&["(~a", "+get)", "clearselectors"])
            .extra_selectors()
            .len(),
        0
    );
}

#[test]
fn describe_round_trips_through_set_user() {
    for rules in [
        &["on", ">x", "%R~a", "~b", "&c", "+@read", "-get", "+set"][..],
        &["+@all", "-@admin", "+config|get", "(~k +get)"],
        &["allkeys", "allchannels", "nocommands", "+select|0"],
    ] {
        let u = user(rules);
        let text = u.describe();
        let again = user(&text.split(' ').collect::<Vec<_>>());
        assert_eq!(again.describe(), text, "rules {rules:?}");
    }
}

#[test]
fn rule_errors_use_redis_texts() {
    let cases = [
        (&["foo"][..], "Error in ACL SETUSER modifier 'foo': Syntax error"),
        (&["+nosuch"], "Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"),
        (&["+@nosuch"], "Error in ACL SETUSER modifier '+@nosuch': Unknown command or category name in ACL"),
        (&["~*", "~a"], "Error in ACL SETUSER modifier '~a': Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"),
        (&["&*", "&a"], "Error in ACL SETUSER modifier '&a': Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"),
        (&["<nope"], "Error in ACL SETUSER modifier '<nope': The password you are trying to remove from the user does not exist"),
        (&["#abc"], "Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"),
        (&["+config|get|x"], "Error in ACL SETUSER modifier '+config|get|x': Allowing first-arg of a subcommand is not supported"),
        (&["+get|"], "Error in ACL SETUSER modifier '+get|': Syntax error"),
        (&["-get|x"], "Error in ACL SETUSER modifier '-get|x': Unknown command or category name in ACL"),
        (&["%X~a"], "Error in ACL SETUSER modifier '%X~a': Syntax error"),
        (&["(on)"], "Error in ACL SETUSER modifier '(on)': Syntax error"),
        (&["(~a"], "Unmatched parenthesis in acl selector starting at '(~a'."),
    ];
    for (rules, text) in cases {
        assert_eq!(set_err(rules), text, "rules {rules:?}");
    }
}

#[test]
fn a_failed_setuser_changes_nothing() {
    let mut users = Users::new(None);
    users.set_user(b"u", &[b"on", b"+get"]).unwrap();
    assert!(users.set_user(b"u", &[b"+set", b"bogus"]).is_err());
    assert_eq!(
        users.get(b"u").unwrap().describe(),
        "on resetchannels -@all +get"
    );
    assert!(users.set_user(b"new", &[b"bogus"]).is_err());
    assert!(users.get(b"new").is_none());
}

#[test]
fn usernames_with_spaces_are_refused() {
    let mut users = Users::new(None);
    assert_eq!(
        users.set_user(b"a b", &[]).unwrap_err(),
        "Usernames can't contain spaces or null characters"
    );
}

#[test]
fn default_user_cannot_be_deleted() {
    let mut users = Users::new(None);
    assert!(!users.delete(b"default"));
    users.set_user(b"x", &[]).unwrap();
    assert!(users.delete(b"x"));
    assert!(!users.delete(b"x"));
}

#[test]
fn disabled_users_and_wrong_passwords_do_not_log_in() {
    let mut users = Users::new(None);
    users.set_user(b"a", &[b">pw"]).unwrap();
    assert!(users.authenticate(b"a", b"pw").is_none());
    users.set_user(b"a", &[b"on"]).unwrap();
    assert!(users.authenticate(b"a", b"pw").is_some());
    assert!(users.authenticate(b"a", b"nope").is_none());
    users.set_user(b"a", &[b"nopass"]).unwrap();
    assert!(users.authenticate(b"a", b"anything").is_some());
}

#[test]
fn command_checks_follow_bits_and_subcommands() {
    let u = user(&["on", "~*", "+get", "+config|get"]);
    assert_eq!(check(&u, &["get", "k"]), Ok(()));
    assert_eq!(check(&u, &["set", "k", "v"]), Err(Denied::Command));
    assert_eq!(check(&u, &["config", "get", "x"]), Ok(()));
    assert_eq!(
        check(&u, &["config", "set", "x", "y"]),
        Err(Denied::Command)
    );
    // AUTH and HELLO are never refused.
    assert_eq!(check(&u, &["auth", "p"]), Ok(()));
}

#[test]
fn first_arg_rules_allow_only_that_argument() {
    let u = user(&["on", "+select|0"]);
    assert_eq!(check(&u, &["select", "0"]), Ok(()));
    assert_eq!(check(&u, &["select", "1"]), Err(Denied::Command));
}

#[test]
fn key_checks_use_the_key_spec_access_flags() {
    let u = user(&["+@all", "%R~r:*", "%W~w:*", "~rw:*"]);
    assert_eq!(check(&u, &["get", "r:1"]), Ok(()));
    assert_eq!(check(&u, &["get", "w:1"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, &["set", "w:1", "v"]), Ok(()));
    assert_eq!(check(&u, &["set", "r:1", "v"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, &["set", "rw:1", "v"]), Ok(()));
    assert_eq!(check(&u, &["mget", "r:1", "x"]), Err(Denied::Key(2)));
    assert_eq!(check(&u, &["copy", "r:1", "w:1"]), Ok(()));
    assert_eq!(check(&u, &["set", "w:1", "v", "get"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, &["getdel", "w:1"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, &["bitfield", "r:1", "get", "u8", "0"]), Ok(()));
    assert_eq!(
        check(&u, &["bitfield", "r:1", "set", "u8", "0", "1"]),
        Err(Denied::Key(1))
    );
}

#[test]
fn channel_checks_match_patterns_and_psubscribe_literally() {
    let u = user(&["+@all", "~*", "&news.*"]);
    assert_eq!(check(&u, &["publish", "news.x", "m"]), Ok(()));
    assert_eq!(
        check(&u, &["publish", "other", "m"]),
        Err(Denied::Channel(1))
    );
    assert_eq!(
        check(&u, &["subscribe", "news.a", "x"]),
        Err(Denied::Channel(2))
    );
    assert_eq!(check(&u, &["psubscribe", "news.*"]), Ok(()));
    assert_eq!(
        check(&u, &["psubscribe", "news.a*"]),
        Err(Denied::Channel(1))
    );
    assert_eq!(check(&u, &["unsubscribe", "other"]), Ok(()));
}

#[test]
fn any_selector_may_allow_and_the_worst_refusal_is_reported() {
    let u = user(&["on", "+get", "~a", "(+set ~b)"]);
    assert_eq!(check(&u, &["get", "a"]), Ok(()));
    assert_eq!(check(&u, &["set", "b", "v"]), Ok(()));
    assert_eq!(check(&u, &["get", "b"]), Err(Denied::Key(1)));
    assert_eq!(check(&u, &["del", "a"]), Err(Denied::Command));
}

#[test]
fn log_groups_similar_entries_within_a_minute() {
    let entry = |t: u64| LogEntry {
        count: 1,
        reason: LogReason::Command,
        context: "toplevel",
        object: b"set".to_vec(),
        username: b"u".to_vec(),
        ctime_ms: t,
        client_info: format!("at {t}"),
    };
    let mut log = Log::default();
    log.add(entry(0), 128);
    log.add(entry(1000), 128);
    assert_eq!(log.entries().len(), 1);
    assert_eq!(log.entries()[0].count, 2);
    assert_eq!(log.entries()[0].client_info, "at 1000");
    log.add(entry(100_000), 128);
    assert_eq!(log.entries().len(), 2);
    log.add(
        LogEntry {
            object: b"get".to_vec(),
            ..entry(100_001)
        },
        2,
    );
    assert_eq!(log.entries().len(), 2);
    assert_eq!(log.entries()[0].object, b"get");
}

#[test]
fn registry_generation_moves_on_every_change() {
    let r = Registry::new(None, b"seed");
    let g = r.generation();
    assert!(!r.auth_required());
    r.modify(|u| u.set_default_password(Some(b"pw")));
    assert!(r.generation() > g);
    assert!(r.auth_required());
}

#[test]
fn genpass_hex_has_the_requested_length_and_varies() {
    let r = Registry::new(None, b"seed");
    let a = r.random_hex(64);
    assert_eq!(a.len(), 64);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, r.random_hex(64));
    assert_eq!(r.random_hex(3).len(), 3);
    assert_eq!(r.random_hex(1024).len(), 1024);
}

#[test]
fn acl_pubsub_default_allchannels_grants_channels_to_new_selectors() {
    let mut users = Users::new(None);
    users.set_pubsub_default(true);
    users.set_user(b"u", &[b"(+get)"]).unwrap();
    assert_eq!(
        users.get(b"u").unwrap().describe(),
        "off &* -@all (&* -@all +get)"
    );
    users.set_user(b"u", &[b"resetchannels", b"reset"]).unwrap();
    assert_eq!(
        users.get(b"u").unwrap().describe(),
        "off sanitize-payload &* -@all"
    );
}

#[test]
fn revoking_channels_names_the_patterns_kept() {
    let old = user(&["&a*", "&b"]);
    assert_eq!(revoked_channels(&old, &user(&["&a*", "&b", "&c"])), None);
    assert_eq!(revoked_channels(&old, &user(&["allchannels"])), None);
    let kept = revoked_channels(&old, &user(&["&a*"])).unwrap();
    assert_eq!(kept, [b"a*".to_vec()]);
    assert!(channel_in(&kept, b"abc", false));
    assert!(!channel_in(&kept, b"b", false));
    assert!(channel_in(&kept, b"a*", true));
    assert!(!channel_in(&kept, b"ab*", true));
    assert!(revoked_channels(&user(&["allchannels"]), &user(&["&x"])).is_some());
}

#[test]
fn config_file_users_load_and_default_is_reset_first() {
    let mut users = Users::new(None);
    let line = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    users
        .load_configured(&[
            line("alice on >pw ~* +@all"),
            line("default on nopass ~a +get"),
        ])
        .unwrap();
    assert_eq!(
        users.get(b"default").unwrap().describe(),
        "on nopass sanitize-payload ~a resetchannels -@all +get"
    );
    assert!(users.authenticate(b"alice", b"pw").is_some());
    assert_eq!(
        users.load_configured(&[line("bob +nosuch")]).unwrap_err(),
        "Error loading ACL rule '+nosuch' for the user named 'bob': Unknown command or category name in ACL"
    );
    let lines = users.config_lines();
    assert_eq!(lines[0][..2], ["alice".to_string(), "on".to_string()]);
    assert_eq!(lines.len(), 2);
}
