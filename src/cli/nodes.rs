//! Reading `CLUSTER NODES` text on the client side (pure): one `NodeLine` per line, the slot
//! set a node reports for itself, the "configuration signature" used to decide whether every
//! node agrees on who owns which slots, and the `[0-5460],[6000]` slot-list rendering.

pub const SLOTS: usize = 16384;

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeLine {
    pub id: String,
    pub ip: String,
    pub port: u16,
    pub bus_port: u16,
    pub flags: Vec<String>,
    /// The master's id for a replica (`-` otherwise).
    pub master_id: Option<String>,
    pub config_epoch: u64,
    pub link_state: String,
    /// Owned slot ranges, inclusive, in the order listed.
    pub ranges: Vec<(u16, u16)>,
    /// `[slot->-dest]` entries: slot and destination node id.
    pub migrating: Vec<(u16, String)>,
    /// `[slot-<-source]` entries: slot and source node id.
    pub importing: Vec<(u16, String)>,
}

impl NodeLine {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
    pub fn is_myself(&self) -> bool {
        self.has_flag("myself")
    }
    pub fn is_replica(&self) -> bool {
        self.has_flag("slave")
    }
    pub fn slot_count(&self) -> usize {
        self.ranges
            .iter()
            .map(|&(a, b)| usize::from(b) - usize::from(a) + 1)
            .sum()
    }
    /// The flags as shown in a node summary: everything but `myself`, comma-separated.
    pub fn shown_flags(&self) -> String {
        self.flags
            .iter()
            .filter(|f| *f != "myself")
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    }
    pub fn slot_bitmap(&self) -> Vec<bool> {
        let mut v = vec![false; SLOTS];
        for &(a, b) in &self.ranges {
            for s in a..=b {
                v[usize::from(s)] = true;
            }
        }
        v
    }
}

/// Splits `ip:port@cport[,hostname]` into its parts; the bus port is 0 when absent.
pub fn parse_addr(addr: &str) -> Option<(String, u16, u16)> {
    let (hostport, bus) = match addr.rsplit_once('@') {
        Some((hp, rest)) => {
            let digits = rest.split(',').next().unwrap_or("");
            (hp, digits.parse::<u16>().ok()?)
        }
        None => (addr, 0),
    };
    let (ip, port) = hostport.rsplit_once(':')?;
    Some((ip.to_string(), port.parse().ok()?, bus))
}

/// Parses a `host:port` command-line argument (IPv6 literals split at the last colon).
pub fn parse_host_port(arg: &str) -> Option<(String, u16)> {
    let (host, port) = arg.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port.parse().ok()?))
}

fn parse_slot(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(n) if usize::from(n) < SLOTS => Ok(n),
        _ => Err(format!("bad slot '{s}'")),
    }
}

/// Parses one `CLUSTER NODES` line.
pub fn parse_line(line: &str) -> Result<NodeLine, String> {
    let fields: Vec<&str> = line.split(' ').filter(|f| !f.is_empty()).collect();
    if fields.len() < 8 {
        return Err(format!("short CLUSTER NODES line: '{line}'"));
    }
    let (ip, port, bus_port) =
        parse_addr(fields[1]).ok_or_else(|| format!("bad address '{}'", fields[1]))?;
    let mut node = NodeLine {
        id: fields[0].to_string(),
        ip,
        port,
        bus_port,
        flags: fields[2]
            .split(',')
            .filter(|f| !f.is_empty() && *f != "noflags")
            .map(str::to_string)
            .collect(),
        master_id: (fields[3] != "-").then(|| fields[3].to_string()),
        config_epoch: fields[6].parse().unwrap_or(0),
        link_state: fields[7].to_string(),
        ..Default::default()
    };
    for tok in &fields[8..] {
        if let Some(inner) = tok.strip_prefix('[') {
            let inner = inner.trim_end_matches(']');
            if let Some((slot, dest)) = inner.split_once("->-") {
                node.migrating.push((parse_slot(slot)?, dest.to_string()));
            } else if let Some((slot, src)) = inner.split_once("-<-") {
                node.importing.push((parse_slot(slot)?, src.to_string()));
            } else {
                return Err(format!("bad open-slot entry '{tok}'"));
            }
        } else if let Some((a, b)) = tok.split_once('-') {
            let (a, b) = (parse_slot(a)?, parse_slot(b)?);
            if a > b {
                return Err(format!("bad slot range '{tok}'"));
            }
            node.ranges.push((a, b));
        } else {
            let s = parse_slot(tok)?;
            node.ranges.push((s, s));
        }
    }
    Ok(node)
}

/// Parses a whole `CLUSTER NODES` reply; only newline-terminated lines count, as a reply
/// always ends with one.
pub fn parse_nodes(text: &str) -> Result<Vec<NodeLine>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((line, tail)) = rest.split_once('\n') {
        rest = tail;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        out.push(parse_line(line)?);
    }
    Ok(out)
}

/// The view of slot ownership one node holds: for every node it lists with at least one slot,
/// `id:` and its slot tokens sorted as text, all such entries sorted and joined with `|`.
/// Two nodes agree about the configuration when their signatures are equal. `None` when the
/// node lists no slot at all.
pub fn config_signature(text: &str) -> Option<String> {
    let mut entries = Vec::new();
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let fields: Vec<&str> = line.trim_end().split(' ').collect();
        if fields.len() < 9 {
            continue;
        }
        let mut slots: Vec<&str> = fields[8..]
            .iter()
            .copied()
            .filter(|t| !t.is_empty() && !t.starts_with('['))
            .collect();
        if slots.is_empty() {
            continue;
        }
        slots.sort_unstable();
        entries.push(format!("{}:{}", fields[0], slots.join(",")));
    }
    if entries.is_empty() {
        return None;
    }
    entries.sort_unstable();
    Some(entries.join("|"))
}

/// Renders a slot bitmap as `[a-b],[c]` runs (empty string for no slots).
pub fn slots_string(bitmap: &[bool]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < bitmap.len() {
        if !bitmap[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < bitmap.len() && bitmap[i + 1] {
            i += 1;
        }
        if start == i {
            parts.push(format!("[{start}]"));
        } else {
            parts.push(format!("[{start}-{i}]"));
        }
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [5460->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@40002 master - 0 1700000001000 2 connected 5461-10922 [5460-<-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca]
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@40003 master - 0 1700000002000 3 connected 10923-16382 16383
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@40005,host5.example slave 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1700000003000 2 connected
";

    #[test]
    fn parses_every_field() {
        let nodes = parse_nodes(SAMPLE).unwrap();
        assert_eq!(nodes.len(), 4);
        let me = &nodes[0];
        assert!(me.is_myself() && !me.is_replica());
        assert_eq!(me.ip, "127.0.0.1");
        assert_eq!((me.port, me.bus_port), (30001, 40001));
        assert_eq!(me.ranges, vec![(0, 5460)]);
        assert_eq!(me.slot_count(), 5461);
        assert_eq!(
            me.migrating,
            vec![(5460, "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1".to_string())]
        );
        assert_eq!(me.shown_flags(), "master");
        assert_eq!(me.config_epoch, 1);
        assert_eq!(nodes[1].importing.len(), 1);
        assert_eq!(nodes[2].ranges, vec![(10923, 16382), (16383, 16383)]);
        assert_eq!(nodes[2].slot_count(), 5461);
        let replica = &nodes[3];
        assert!(replica.is_replica());
        assert_eq!(replica.bus_port, 40005);
        assert_eq!(
            replica.master_id.as_deref(),
            Some("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1")
        );
        assert_eq!(replica.slot_count(), 0);
        assert_eq!(replica.link_state, "connected");
    }

    #[test]
    fn handshake_and_noaddr_lines() {
        let text = "aaaa :0@0 handshake,noaddr - 0 0 0 disconnected\n\
                    bbbb 127.0.0.1:7000@17000 myself,master - 0 0 0 connected\n";
        let nodes = parse_nodes(text).unwrap();
        assert_eq!(nodes[0].port, 0);
        assert!(nodes[0].has_flag("handshake") && nodes[0].has_flag("noaddr"));
        assert_eq!(nodes[0].link_state, "disconnected");
        assert!(nodes[1].ranges.is_empty());
    }

    #[test]
    fn an_unterminated_last_line_is_ignored_and_bad_lines_are_errors() {
        let text = "bbbb 127.0.0.1:7000@17000 myself,master - 0 0 0 connected\ncccc 1";
        assert_eq!(parse_nodes(text).unwrap().len(), 1);
        assert!(parse_nodes("x y\n").is_err());
        assert!(parse_nodes("x 1.2.3.4:1@2 master - 0 0 0 connected 5-2\n").is_err());
        assert!(parse_nodes("x 1.2.3.4:1@2 master - 0 0 0 connected 16384\n").is_err());
        assert!(parse_nodes("x nocolon master - 0 0 0 connected\n").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("127.0.0.1:7000@17000"),
            Some(("127.0.0.1".into(), 7000, 17000))
        );
        assert_eq!(
            parse_addr("::1:7000@17000,host"),
            Some(("::1".into(), 7000, 17000))
        );
        assert_eq!(
            parse_addr("10.0.0.1:7000"),
            Some(("10.0.0.1".into(), 7000, 0))
        );
        assert_eq!(
            parse_host_port("127.0.0.1:7000"),
            Some(("127.0.0.1".into(), 7000))
        );
        assert_eq!(parse_host_port("[::1]:7000"), Some(("::1".into(), 7000)));
        assert_eq!(parse_host_port("7000"), None);
        assert_eq!(parse_host_port("h:70000"), None);
    }

    #[test]
    fn signatures_ignore_order_open_slots_and_slotless_nodes() {
        let a = "n1 h:1@2 myself,master - 0 0 1 connected 0-10 20 [5->-n2]\n\
                 n2 h:3@4 master - 0 0 2 connected 11-19\n\
                 n3 h:5@6 slave n1 0 0 1 connected\n";
        let b = "n3 h:5@6 myself,slave n1 0 0 1 connected\n\
                 n2 h:3@4 master - 0 0 2 connected 11-19\n\
                 n1 h:1@2 master - 0 0 1 connected 20 0-10\n";
        assert_eq!(config_signature(a), config_signature(b));
        assert_eq!(
            config_signature(a).unwrap(),
            "n1:0-10,20|n2:11-19".to_string()
        );
        let c = "n1 h:1@2 myself,master - 0 0 1 connected 0-10 20\n";
        assert_ne!(config_signature(a), config_signature(c));
        assert_eq!(
            config_signature("n1 h:1@2 myself,master - 0 0 1 connected\n"),
            None
        );
    }

    #[test]
    fn slot_lists() {
        let mut b = vec![false; SLOTS];
        assert_eq!(slots_string(&b), "");
        b[..=5460].fill(true);
        b[6000] = true;
        b[16383] = true;
        b[16382] = true;
        assert_eq!(slots_string(&b), "[0-5460],[6000],[16382-16383]");
    }
}
