use std::time::{Instant, SystemTime};
use gatehouse_policy::*;
fn cpu() -> f64 { let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap(); let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect(); (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0 }
fn main() {
    let principal = Principal { user: "u1".into(), groups: vec!["g1".into()], teams: vec![] };
    let item = Item { kind: ItemKind::Tool(Class::Read), server: "s".into(), name: "s__get".into(), environment: None };
    for n in [std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50usize)] {
        let grants: Vec<RawGrant> = (0..n).map(|i| RawGrant { to: vec!["*".into()], servers: Some(vec!["*".into()]), id: Some(format!("r{i}")), ..Default::default() }).collect();
        let set = PolicySet::compile(&grants, &[]).unwrap();
        let req = DecisionRequest { principal: &principal, action: Action::Use, item: &item, arguments: None };
        let now = SystemTime::now();
        let reps = 400000 / (n + 1) + 1000;
        let t = Instant::now(); let c0 = cpu();
        for _ in 0..reps { std::hint::black_box(set.decide(&req, now)); }
        let _ = t; let per = (cpu() - c0) * 1e6 / reps as f64;
        println!("n={n:4} mean {per:8.1} µs  per-rule {:6.2}", if n > 0 { per / n as f64 } else { 0.0 });
    }
}
