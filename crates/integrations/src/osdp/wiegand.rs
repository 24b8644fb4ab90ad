//! Card credentials as a panel reads them: Wiegand 26-bit (H10301: 8-bit facility code, 16-bit card
//! number, even parity over the first 12 bits, odd over the last 12), 34-bit (H10306: 16-bit facility,
//! 16-bit card, parities over 16 bits each), and raw bytes. Bits are sent most significant first, packed
//! into bytes from the top bit, as OSDP's card-read reply carries them.

use facegate_store::{CardCredential, CardFormat};

/// A card read: its bit count and its bits, packed from the top bit of the first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardBits {
    /// Valid bits.
    pub bits: usize,
    /// The bits, packed.
    pub data: Vec<u8>,
}

fn pack(bits: &[bool]) -> Vec<u8> {
    let mut data = vec![0u8; bits.len().div_ceil(8)];
    for (i, bit) in bits.iter().enumerate() {
        if *bit {
            data[i / 8] |= 0x80 >> (i % 8);
        }
    }
    data
}

/// The bits of `value`, `width` of them, most significant first.
fn bits_of(value: u64, width: usize) -> impl Iterator<Item = bool> {
    (0..width).rev().map(move |i| (value >> i) & 1 == 1)
}

/// A Wiegand frame: even parity over the first half of `payload`, the payload, odd parity over its
/// second half.
fn wiegand(payload: Vec<bool>) -> CardBits {
    let half = payload.len() / 2;
    let even = payload[..half].iter().filter(|b| **b).count() % 2 == 1;
    let odd = payload[half..].iter().filter(|b| **b).count() % 2 == 0;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.push(even);
    frame.extend(payload);
    frame.push(odd);
    CardBits { bits: frame.len(), data: pack(&frame) }
}

/// The card read of a credential (its ranges were checked when it was stored).
pub fn card_bits(credential: &CardCredential) -> CardBits {
    let (facility, number) = (u64::from(credential.facility_code), credential.card_number);
    match credential.format {
        CardFormat::Wiegand26 => wiegand(bits_of(facility, 8).chain(bits_of(number, 16)).collect()),
        CardFormat::Wiegand34 => wiegand(bits_of(facility, 16).chain(bits_of(number, 16)).collect()),
        CardFormat::Raw => {
            let bytes = number.to_be_bytes().to_vec();
            let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len() - 1);
            let data = bytes[first..].to_vec();
            CardBits { bits: data.len() * 8, data }
        }
    }
}

/// Reads a 26-bit frame back: (facility code, card number) if both parities hold.
pub fn read_wiegand26(bits: &CardBits) -> Option<(u32, u64)> {
    if bits.bits != 26 {
        return None;
    }
    let bit = |i: usize| bits.data.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0);
    let frame: Vec<bool> = (0..26).map(bit).collect();
    let even_ok = frame[..13].iter().filter(|b| **b).count() % 2 == 0;
    let odd_ok = frame[13..].iter().filter(|b| **b).count() % 2 == 1;
    let value = |range: std::ops::Range<usize>| range.fold(0u64, |v, i| (v << 1) | u64::from(frame[i]));
    (even_ok && odd_ok).then(|| (value(1..9) as u32, value(9..25)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(format: CardFormat, facility_code: u32, card_number: u64) -> CardCredential {
        CardCredential { system: "default".into(), format, facility_code, card_number }
    }

    #[test]
    fn a_26_bit_card_has_its_fields_and_parities() {
        // Facility 1, card 1: 0 00000001 0000000000000001 1 (first half has one 1: even parity 1... here 1 bit
        // set in the first 12 payload bits, so the even parity bit is 1; one in the last 12, so odd parity 0).
        let read = card_bits(&card(CardFormat::Wiegand26, 1, 1));
        assert_eq!(read.bits, 26);
        let expected = [true, false, false, false, false, false, false, false, true]
            .into_iter()
            .chain(std::iter::repeat_n(false, 15))
            .chain([true, false])
            .collect::<Vec<bool>>();
        assert_eq!(read.data, pack(&expected));
        assert_eq!(read_wiegand26(&read), Some((1, 1)));
        let known = card_bits(&card(CardFormat::Wiegand26, 123, 45678));
        assert_eq!(read_wiegand26(&known), Some((123, 45678)));
        let mut flipped = known.clone();
        flipped.data[1] ^= 0x10;
        assert_eq!(read_wiegand26(&flipped), None, "a flipped bit breaks a parity");
    }

    #[test]
    fn a_34_bit_card_and_raw_numbers() {
        let read = card_bits(&card(CardFormat::Wiegand34, 65535, 65535));
        assert_eq!((read.bits, read.data.len()), (34, 5));
        // 16 ones in each half: even parity 0, odd parity 1.
        assert_eq!(read.data, vec![0x7f, 0xff, 0xff, 0xff, 0xc0]);
        let raw = card_bits(&card(CardFormat::Raw, 0, 0x0102_0304));
        assert_eq!(raw, CardBits { bits: 32, data: vec![1, 2, 3, 4] });
    }
}
