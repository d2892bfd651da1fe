//! An estimate of RE2's `ProgramSize()` for a regular expression, which Envoy compares with
//! its limit (runtime `re2.max_program_size.error_level`, 100 by default) before it accepts
//! a `safe_regex`. Above it Envoy NACKs the whole RouteConfiguration.
//!
//! RE2 counts instructions of its compiled, flattened program, not anything the Rust regex
//! crate measures, so this module mirrors RE2's compiler on the parsed expression:
//! counted repetitions expanded (`x{2,5}` is `xx` and three nested optional `x`), one
//! instruction per UTF-8 byte of a literal, one per ASCII range of a class (ranges wholly in
//! `A-Z` merge into their lower-case twins when the class folds case, and the range from
//! U+0080 to the top costs nothing extra), two per capture, one per `+` or `?`, and the
//! program's frame (fail, match and the unanchored `.*?` loop: 4; 2 when the expression
//! starts with `^`; a literal right after `^` is matched outside the program and costs 2
//! whatever its length). The constants come from Envoy 1.40 itself
//! (`re2.max_program_size.error_level: 1` makes it print the size of every expression);
//! `tests/re2_size_envoy.rs` compares this estimate with that Envoy on a table of
//! expressions. It is exact on the shapes routes use and close elsewhere (known
//! differences: RE2 factors common prefixes of alternatives, `foo|foobar` is 11 here 13;
//! nested loops like `(a*)*` cost RE2 more; `\s` includes `\v` here but not in RE2, so
//! `\S` is one short); `None` when the expression does not parse (the caller reports that
//! separately).

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// The estimated RE2 program size of `pattern` (RE2 syntax as Envoy reads it).
pub fn program_size(pattern: &str) -> Option<usize> {
    // RE2's `\d`, `\s`, `\w` and `\b` are ASCII-only and it matches UTF-8 bytewise, so
    // the byte-oriented (non-Unicode) parse is the faithful one; Unicode classes (`\pL`,
    // a non-ASCII character inside brackets) only parse in Unicode mode.
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .or_else(|_| regex_syntax::ParserBuilder::new().build().parse(pattern))
        .ok()?;
    let mut parts: Vec<&Hir> = match hir.kind() {
        HirKind::Concat(items) => items.iter().collect(),
        _ => vec![&hir],
    };
    // A trailing `$` becomes a property of the program, not an instruction.
    if parts.last().is_some_and(|h| is_look(h, Look::End)) {
        parts.pop();
    }
    let frame: u64 = if parts.first().is_some_and(|h| is_look(h, Look::Start)) {
        parts.remove(0);
        // RE2 matches a literal prefix of an anchored expression before running the
        // program; what remains of it is a constant two instructions.
        if parts
            .first()
            .is_some_and(|h| matches!(h.kind(), HirKind::Literal(_)))
        {
            parts.remove(0);
            4
        } else {
            2
        }
    } else {
        4
    };
    let body = concat_cost(&parts);
    usize::try_from(frame.saturating_add(body)).ok()
}

fn is_look(h: &Hir, look: Look) -> bool {
    matches!(h.kind(), HirKind::Look(l) if *l == look)
}

fn is_loop(h: &Hir) -> bool {
    matches!(h.kind(), HirKind::Repetition(r) if r.max.is_none())
}

fn concat_cost(items: &[&Hir]) -> u64 {
    let mut total = 0u64;
    for (i, item) in items.iter().enumerate() {
        total = total.saturating_add(cost(item));
        // A loop right after another repetition is entered from that one's exit: RE2's
        // flattening gives it one more instruction (seen: `a*b*` is 7, `a*b` 6).
        if i > 0 && is_loop(item) && matches!(items[i - 1].kind(), HirKind::Repetition(_)) {
            total = total.saturating_add(1);
        }
    }
    total
}

fn cost(h: &Hir) -> u64 {
    match h.kind() {
        HirKind::Empty => 0,
        HirKind::Literal(lit) => lit.0.len() as u64,
        HirKind::Class(class) => class_cost(class),
        HirKind::Look(_) => 1,
        HirKind::Capture(c) => cost(&c.sub).saturating_add(2),
        HirKind::Concat(items) => concat_cost(&items.iter().collect::<Vec<_>>()),
        HirKind::Alternation(items) => items.iter().map(cost).fold(0, u64::saturating_add),
        HirKind::Repetition(r) => {
            let sub = cost(&r.sub);
            let min = u64::from(r.min);
            match r.max {
                // x{n,} is n-1 copies of x, then x+ (x* when n is 0).
                None if min == 0 => sub,
                None => sub.saturating_mul(min).saturating_add(1),
                // x{n,m} is n copies, then m-n nested optional copies.
                Some(max) => {
                    let optional = u64::from(max).saturating_sub(min);
                    sub.saturating_mul(min)
                        .saturating_add(optional.saturating_mul(sub.saturating_add(1)))
                }
            }
        }
    }
}

/// Instructions of a character class: its ASCII ranges (the upper-case ones dropped when
/// the class treats both cases alike, as RE2 then marks the lower-case ones to fold), and
/// for ranges beyond ASCII one per UTF-8 byte of their start, except the range reaching
/// U+10FFFF from U+0080, which RE2 compiles into what the ASCII part already has.
fn class_cost(class: &Class) -> u64 {
    let (ranges, top): (Vec<(u32, u32)>, u32) = match class {
        Class::Bytes(bytes) => (
            bytes
                .ranges()
                .iter()
                .map(|r| (u32::from(r.start()), u32::from(r.end())))
                .collect(),
            0xff,
        ),
        Class::Unicode(unicode) => (
            unicode
                .ranges()
                .iter()
                .map(|r| (u32::from(r.start()), u32::from(r.end())))
                .collect(),
            0x10ffff,
        ),
    };
    {
        {
            let contains = |c: u32| ranges.iter().any(|(s, e)| (*s..=*e).contains(&c));
            let folds =
                (u32::from(b'a')..=u32::from(b'z')).all(|c| contains(c) == contains(c - 32));
            let mut total = 0u64;
            for &(start, end) in &ranges {
                if start < 0x80 {
                    let upper_only = (u32::from(b'A')..=u32::from(b'Z')).contains(&start)
                        && (u32::from(b'A')..=u32::from(b'Z')).contains(&end.min(0x7f));
                    if !(folds && upper_only) {
                        total += 1;
                    }
                    if end < 0x80 {
                        continue;
                    }
                }
                let beyond = start.max(0x80);
                if beyond == 0x80 && end == top {
                    continue;
                }
                total += if top == 0xff {
                    1
                } else {
                    char::from_u32(beyond).map_or(4, |c| c.len_utf8() as u64)
                };
            }
            total
        }
    }
}

#[cfg(test)]
mod tests {
    use super::program_size;

    /// Sizes Envoy 1.40 printed for these expressions (see the module docs).
    const MEASURED: &[(&str, usize)] = &[
        ("a", 5),
        ("abc", 7),
        ("a*", 5),
        ("a+", 6),
        ("a?", 6),
        ("[a-z]", 5),
        ("[a-z0-9]", 6),
        (".", 6),
        ("(a)", 7),
        ("(?:a)", 5),
        ("a|b|c", 5),
        ("abc|def", 10),
        ("a{2,5}", 12),
        ("a{0,3}", 10),
        ("^a$", 4),
        ("/api/.*", 11),
        ("\\d", 5),
        ("\\w", 7),
        ("[^/]+", 7),
        ("(a|b)*", 7),
        ("x{99}", 103),
        ("x{100}", 104),
        ("^[a-z]", 3),
        ("^[a-z]+", 4),
        ("^/api/[a-z]+", 6),
        ("^/api/v1", 4),
        ("é", 6),
        ("\\W", 9),
        ("[a-zA-Z0-9_-]", 8),
        ("a*b*", 7),
        ("a*b*c*", 9),
        ("a+b+", 9),
        ("x{3,}y", 9),
        ("(foo|bar)+", 13),
        ("(?i)hello", 9),
        ("/v[0-9]+/users/[^/]+", 18),
        ("\\bfoo\\b", 9),
    ];

    #[test]
    fn the_estimate_matches_what_envoy_measured() {
        let wrong: Vec<String> = MEASURED
            .iter()
            .filter_map(|(re, envoy)| {
                let ours = program_size(re).unwrap();
                (ours != *envoy).then(|| format!("{re:?}: estimated {ours}, Envoy {envoy}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn huge_repetitions_saturate_instead_of_overflowing() {
        assert!(program_size("((a{1000}){1000}){1000}").unwrap() > 100);
        assert_eq!(program_size("(unclosed"), None);
    }
}
