//! The `.expect` files of the decision cases: one JSON object per line, in a fixed
//! format simple enough to read without a JSON library.

use kafel::interp::SeccompData;

/// One line of an `.expect` file.
#[derive(Debug, Clone)]
pub struct Expect {
    pub data: SeccompData,
    pub action: String,
    pub kafel_steps: usize,
}

/// Parses `{"arch":N,"nr":N,"args":[...],"ip":0,"action":"X","kafel_steps":N}`.
pub fn parse_expect(line: &str) -> Expect {
    let field = |name: &str| -> &str {
        let key = format!("\"{name}\":");
        let start = line
            .find(&key)
            .unwrap_or_else(|| panic!("{name} in {line}"))
            + key.len();
        let rest = &line[start..];
        let end = if rest.starts_with('[') {
            rest.find(']').expect("closing bracket") + 1
        } else if let Some(stripped) = rest.strip_prefix('"') {
            stripped.find('"').expect("closing quote") + 2
        } else {
            rest.find([',', '}']).expect("end of value")
        };
        &rest[..end]
    };
    let number = |name: &str| field(name).parse::<u64>().expect("number");
    let args: Vec<u64> = field("args")
        .trim_matches(['[', ']'])
        .split(',')
        .map(|a| a.trim().parse().expect("argument"))
        .collect();
    Expect {
        data: SeccompData {
            nr: number("nr") as u32,
            arch: number("arch") as u32,
            instruction_pointer: number("ip"),
            args: args.try_into().expect("six arguments"),
        },
        action: field("action").trim_matches('"').to_owned(),
        kafel_steps: number("kafel_steps") as usize,
    }
}
