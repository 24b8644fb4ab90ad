//! Matroska (MKV) and WebM files: the first video track, H.264 (`V_MPEG4/ISO/AVC`, length-prefixed NAL
//! units with an `avcC` record) or Motion JPEG (`V_MJPEG`), demuxed by `matroska-demuxer` into
//! [`Packet`]s. Block timestamps are presentation times.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use matroska_demuxer::{Frame as Block, MatroskaFile, TrackType};

use crate::VideoError;
use crate::source::{BoxedInput, Codec, Packet, START_CODE, append_annex_b};

/// The first bytes of every Matroska file (the EBML header's id).
pub(crate) const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

/// The video track of a Matroska file, as packets in decoding order.
pub struct MkvSource {
    file: MatroskaFile<BoxedInput>,
    track: u64,
    codec: Codec,
    /// H.264: SPS and PPS in Annex B form, sent before every key frame.
    parameter_sets: Vec<u8>,
    /// H.264: bytes of each NAL unit's length prefix.
    length_size: usize,
    /// Seconds per timestamp tick.
    tick_s: f64,
    /// The first picture's timestamp (stream time 0).
    origin: Option<u64>,
    block: Block,
    /// Width and height from the track entry.
    size: (u32, u32),
}

impl MkvSource {
    /// Opens `path` and finds its first H.264 or MJPEG video track.
    ///
    /// # Errors
    /// [`VideoError::Open`] for a file that cannot be read; [`VideoError::Container`] for one that is not
    /// Matroska or whose H.264 track has no usable `avcC`; [`VideoError::NoVideo`] when no video track
    /// is H.264 or MJPEG.
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        let file = File::open(path).map_err(|e| VideoError::Open(format!("{}: {e}", path.display())))?;
        let input: Box<dyn crate::source::Input> = Box::new(file);
        Self::read(BufReader::new(input)).map_err(|e| e.about(&path.display().to_string()))
    }

    /// Width and height of the video track, as the file declares them.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    pub(crate) fn read(input: BoxedInput) -> Result<Self, VideoError> {
        let file = MatroskaFile::open(input).map_err(|e| VideoError::Container(e.to_string()))?;
        let (track, codec, parameter_sets, length_size) = file
            .tracks()
            .iter()
            .filter(|t| t.track_type() == TrackType::Video)
            .find_map(|t| match t.codec_id() {
                "V_MPEG4/ISO/AVC" => {
                    let record = t.codec_private().and_then(avc_record);
                    Some((t.track_number().get(), Codec::H264, record))
                }
                "V_MJPEG" => Some((t.track_number().get(), Codec::Mjpeg, Some((Vec::new(), 4)))),
                _ => None,
            })
            .map(|(track, codec, record)| record.map(|(sets, length)| (track, codec, sets, length)))
            .ok_or(VideoError::NoVideo)?
            .ok_or_else(|| VideoError::Container("the H.264 track's avcC".into()))?;
        let tick_s = file.info().timestamp_scale().get() as f64 / 1e9;
        let side = |v: std::num::NonZeroU64| u32::try_from(v.get()).unwrap_or(u32::MAX);
        let size = file
            .tracks()
            .iter()
            .find(|t| t.track_number().get() == track)
            .and_then(|t| t.video())
            .map_or((0, 0), |v| (side(v.pixel_width()), side(v.pixel_height())));
        Ok(Self {
            file,
            track,
            codec,
            parameter_sets,
            length_size,
            tick_s,
            origin: None,
            block: Block::default(),
            size,
        })
    }

    /// The next picture of the track in decoding order, or `None` at the end.
    ///
    /// # Errors
    /// [`VideoError::Container`] for a block that cannot be read or NAL units that run past its end.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, VideoError> {
        loop {
            let more = self.file.next_frame(&mut self.block).map_err(|e| VideoError::Container(e.to_string()))?;
            if !more {
                return Ok(None);
            }
            if self.block.track != self.track {
                continue;
            }
            let origin = *self.origin.get_or_insert(self.block.timestamp);
            let pts_s = self.block.timestamp.saturating_sub(origin) as f64 * self.tick_s;
            let data = std::mem::take(&mut self.block.data);
            if self.codec == Codec::Mjpeg {
                return Ok(Some(Packet { pts_s, codec: Codec::Mjpeg, data, key: true }));
            }
            let key = self.block.is_keyframe.unwrap_or_else(|| starts_idr(&data, self.length_size));
            let mut annex_b = Vec::with_capacity(data.len() + self.parameter_sets.len() + 16);
            if key {
                annex_b.extend_from_slice(&self.parameter_sets);
            }
            append_annex_b(&mut annex_b, &data, self.length_size)
                .ok_or_else(|| VideoError::Container("a block's NAL lengths run past its end".into()))?;
            return Ok(Some(Packet { pts_s, codec: Codec::H264, data: annex_b, key }));
        }
    }
}

/// The parameter sets (Annex B) and NAL length size of an `avcC` record (ISO 14496-15).
fn avc_record(record: &[u8]) -> Option<(Vec<u8>, usize)> {
    let length_size = usize::from(*record.get(4)? & 3) + 1;
    let mut sets = Vec::new();
    let mut at = 5;
    for mask in [0x1F, 0xFF] {
        let count = record.get(at)? & mask;
        at += 1;
        for _ in 0..count {
            let length = usize::from(u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]));
            let set = record.get(at + 2..at + 2 + length)?;
            sets.extend_from_slice(&START_CODE);
            sets.extend_from_slice(set);
            at += 2 + length;
        }
    }
    Some((sets, length_size))
}

/// Whether a length-prefixed access unit holds an IDR slice (NAL type 5).
fn starts_idr(sample: &[u8], length_size: usize) -> bool {
    let mut at = 0;
    while let Some(prefix) = sample.get(at..at + length_size) {
        let length = prefix.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        if sample.get(at + length_size).is_some_and(|header| header & 0x1F == 5) {
            return true;
        }
        at += length_size + length;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_avcc_record_gives_its_parameter_sets_and_length_size() {
        // Version 1, profile/compat/level, 4-byte lengths, one SPS of 3 bytes, one PPS of 2 bytes.
        let record = [1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 9];
        let (sets, length_size) = avc_record(&record).expect("well formed");
        assert_eq!(length_size, 4);
        assert_eq!(sets, [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 9]);
        assert!(avc_record(&record[..10]).is_none(), "cut short");
        assert!(starts_idr(&[0, 0, 0, 2, 0x65, 0x88], 4));
        assert!(!starts_idr(&[0, 0, 0, 2, 0x41, 0x88], 4));
    }
}
