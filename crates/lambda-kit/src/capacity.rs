//! DynamoDB capacity as AWS sizes it ("DynamoDB item sizes and formats", "read/write capacity
//! units"), from the items themselves: an emulator reports a fixed `ConsumedCapacity` whatever
//! the item, so it cannot be the judge of what a design costs.
//!
//! - An item's size is the sum of its attributes' sizes; an attribute's is its name's UTF-8
//!   bytes plus its value's: a string's UTF-8 bytes; a number's 1 byte per two significant
//!   digits plus 1; a binary's raw bytes; a null or Boolean 1; a list or map 3 bytes plus, for
//!   each element, 1 byte and the element's size (a map's elements with their names); a set the
//!   sum of its elements.
//! - A write costs 1 write unit per started KB of the item (at least 1); a strongly consistent
//!   read 1 read unit per started 4 KB, an eventually consistent one half that; a transaction
//!   twice either.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// One KB: the size a write unit covers.
pub const WRITE_UNIT_BYTES: usize = 1024;
/// Four KB: the size a strongly consistent read unit covers.
pub const READ_UNIT_BYTES: usize = 4096;

/// The size of an item in bytes.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

/// The size of a value, without its attribute's name.
pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
        // A type this SDK version does not know: sized as nothing rather than guessed.
        _ => 0,
    }
}

/// A number's size: 1 byte per two significant digits (leading and trailing zeros trimmed),
/// plus 1.
pub fn number_size(number: &str) -> usize {
    let digits: String = number
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

/// The write units one write of an item of `bytes` costs (twice that in a transaction).
pub fn write_units(bytes: usize, transactional: bool) -> f64 {
    let units = bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as f64;
    if transactional {
        2.0 * units
    } else {
        units
    }
}

/// The read units one read of an item of `bytes` costs: half for an eventually consistent read,
/// twice for a transactional one.
pub fn read_units(bytes: usize, consistent: bool, transactional: bool) -> f64 {
    let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    match (transactional, consistent) {
        (true, _) => 2.0 * units,
        (false, true) => units,
        (false, false) => units / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::primitives::Blob;

    use super::*;

    fn s(value: &str) -> AttributeValue {
        AttributeValue::S(value.into())
    }

    fn n(value: &str) -> AttributeValue {
        AttributeValue::N(value.into())
    }

    /// Each rule of AWS's page, one attribute at a time.
    #[test]
    fn each_type_is_sized_as_aws_documents() {
        let size = |name: &str, value: AttributeValue| {
            item_size(&HashMap::from([(name.to_owned(), value)]))
        };
        // A string: name + UTF-8 bytes ("é" is two).
        assert_eq!(size("city", s("Zürich")), 4 + 7);
        // A number: name + 1 byte per two significant digits + 1; zeros at either end trimmed.
        assert_eq!(size("n", n("12345")), 1 + 3 + 1);
        assert_eq!(size("n", n("0012300")), 1 + 2 + 1);
        assert_eq!(size("n", n("-1.5")), 1 + 1 + 1);
        // A binary: name + raw bytes.
        assert_eq!(
            size("b", AttributeValue::B(Blob::new(vec![0u8; 10]))),
            1 + 10
        );
        // Null and Boolean: name + 1.
        assert_eq!(size("ok", AttributeValue::Bool(true)), 2 + 1);
        assert_eq!(size("no", AttributeValue::Null(true)), 2 + 1);
        // An empty list or map: name + 3.
        assert_eq!(size("l", AttributeValue::L(vec![])), 1 + 3);
        assert_eq!(size("m", AttributeValue::M(HashMap::new())), 1 + 3);
        // Each element: 1 byte more, and a map's elements carry their names.
        assert_eq!(
            size("l", AttributeValue::L(vec![s("ab"), n("7")])),
            1 + 3 + (1 + 2) + (1 + 2)
        );
        let map = HashMap::from([("k".to_owned(), s("abc"))]);
        assert_eq!(size("m", AttributeValue::M(map)), 1 + 3 + (1 + 1 + 3));
        // A set: the sum of its elements.
        assert_eq!(
            size("ss", AttributeValue::Ss(vec!["a".into(), "bcd".into()])),
            2 + 4
        );
    }

    /// An item sized by hand from AWS's rules (eight attributes, seven strings and a number):
    /// 141 bytes, one write unit, one read unit (half when eventually consistent).
    #[test]
    fn an_item_s_size_and_units() {
        let item = HashMap::from([
            ("itemType".to_owned(), s("SLOT")),
            ("id".to_owned(), s("abc1231")),
            ("hostName".to_owned(), s("Harry Mason")),
            ("timeSlot".to_owned(), s("February 23, 1999")),
            ("slotStatus".to_owned(), s("OPEN")),
            ("createdAt".to_owned(), s("February 1, 1999")),
            ("updatedAt".to_owned(), s("February 1, 1999")),
            ("expiresAt".to_owned(), n("2099")),
        ]);
        assert_eq!(item_size(&item), 141);
        assert_eq!(write_units(141, false), 1.0);
        assert_eq!(read_units(141, false, false), 0.5);
    }

    /// AWS's examples of units: a 3.5 KB item takes 4 write units and 1 strongly consistent
    /// read unit; a 1 KB write in a transaction 2; an 8 KB transactional read 4.
    #[test]
    fn units_round_up_per_kb_and_per_4_kb_and_double_in_transactions() {
        assert_eq!(write_units(3584, false), 4.0);
        assert_eq!(read_units(3584, true, false), 1.0);
        assert_eq!(write_units(1024, false), 1.0);
        assert_eq!(write_units(1025, false), 2.0);
        assert_eq!(write_units(1024, true), 2.0);
        assert_eq!(read_units(8192, true, true), 4.0);
        assert_eq!(write_units(0, false), 1.0, "a write costs at least a unit");
    }
}
