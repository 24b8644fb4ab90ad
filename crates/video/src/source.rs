//! Video in: the video track of an MP4/MOV file (H.264), a Matroska/WebM file (H.264 or MJPEG,
//! [`crate::mkv`]) or an AVI file (MJPEG, [`crate::avi`]), demuxed into pictures (H.264 access units in Annex B form, what the decoder reads;
//! JPEG pictures) with their presentation times, decoded (OpenH264; the `image` crate's JPEG decoder)
//! into RGB frames in presentation order. No ffmpeg, no process: the file is read in place.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, Seek as _};
use std::path::Path;

use image::RgbImage;
use openh264::OpenH264API;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;

use crate::VideoError;

/// How a picture is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// H.264: NAL units, each after a `00 00 00 01` start code (parameter sets before every key frame).
    H264,
    /// Motion JPEG: each picture one JPEG image.
    Mjpeg,
}

/// One coded picture and when it is shown.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Presentation time, seconds from the stream's start (its first picture's presentation time).
    pub pts_s: f64,
    /// How `data` is coded.
    pub codec: Codec,
    /// The picture (see [`Codec`]).
    pub data: Vec<u8>,
    /// A key frame (decoding can start here; every MJPEG picture is one).
    pub key: bool,
}

/// A video file's pictures in decoding order, whatever its container.
pub enum VideoFile {
    /// MP4 or MOV.
    Mp4(Mp4Source),
    /// Matroska or WebM.
    Mkv(crate::mkv::MkvSource),
    /// AVI (Motion JPEG).
    Avi(crate::avi::AviSource),
}

/// What a container is read from: a file, or a video held in memory (an upload).
pub trait Input: std::io::Read + std::io::Seek + Send {}

impl<T: std::io::Read + std::io::Seek + Send> Input for T {}

/// A boxed [`Input`].
pub(crate) type BoxedInput = BufReader<Box<dyn Input>>;

impl VideoFile {
    /// Opens `path`, telling the container from its first bytes (Matroska's EBML magic, RIFF for AVI,
    /// else MP4).
    ///
    /// # Errors
    /// As [`Mp4Source::open`] and [`crate::mkv::MkvSource::open`].
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        let file = File::open(path).map_err(|e| VideoError::Open(format!("{}: {e}", path.display())))?;
        Self::read(Box::new(file)).map_err(|e| e.about(&path.display().to_string()))
    }

    /// A video held in memory (an upload), as [`VideoFile::open`] reads a file.
    ///
    /// # Errors
    /// As [`VideoFile::open`].
    pub fn from_bytes(bytes: impl AsRef<[u8]> + Send + 'static) -> Result<Self, VideoError> {
        Self::read(Box::new(std::io::Cursor::new(bytes)))
    }

    fn read(mut input: Box<dyn Input>) -> Result<Self, VideoError> {
        let mut magic = [0u8; 4];
        let read = std::io::Read::read(&mut input, &mut magic).map_err(|e| VideoError::Open(e.to_string()))?;
        let size = input.seek(std::io::SeekFrom::End(0)).map_err(|e| VideoError::Open(e.to_string()))?;
        input.rewind().map_err(|e| VideoError::Open(e.to_string()))?;
        if read == 4 && magic == crate::mkv::EBML_MAGIC {
            return crate::mkv::MkvSource::read(BufReader::new(input)).map(Self::Mkv);
        }
        if read == 4 && magic == crate::avi::RIFF_MAGIC {
            return crate::avi::AviSource::read(BufReader::new(input), size).map(Self::Avi);
        }
        Mp4Source::read(BufReader::new(input), size).map(Self::Mp4)
    }

    /// Width and height of the video track, as its container declares them.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Self::Mp4(source) => (u32::from(source.size.0), u32::from(source.size.1)),
            Self::Mkv(source) => source.size(),
            Self::Avi(source) => source.size(),
        }
    }

    /// The next picture in decoding order, or `None` at the end.
    ///
    /// # Errors
    /// [`VideoError::Container`] for a picture that cannot be read.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, VideoError> {
        match self {
            Self::Mp4(source) => source.next_packet(),
            Self::Mkv(source) => source.next_packet(),
            Self::Avi(source) => source.next_packet(),
        }
    }
}

/// A decoded picture.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Position in presentation order, from 0.
    pub index: u64,
    /// Presentation time, seconds from the stream's first frame.
    pub stream_time_s: f64,
    /// The pixels.
    pub image: RgbImage,
}

/// The H.264 track of an MP4/MOV file, as packets in decoding order.
pub struct Mp4Source {
    reader: mp4::Mp4Reader<BoxedInput>,
    track_id: u32,
    samples: u32,
    next: u32,
    timescale: f64,
    /// SPS and PPS in Annex B form, sent before every key frame.
    parameter_sets: Vec<u8>,
    /// Bytes of each NAL unit's length prefix.
    length_size: usize,
    /// The first sample's presentation time, in track units (stream time 0).
    origin: Option<i64>,
    /// Width and height from the track header.
    size: (u16, u16),
}

pub(crate) const START_CODE: [u8; 4] = [0, 0, 0, 1];

impl Mp4Source {
    /// Opens `path` and finds its H.264 video track.
    ///
    /// # Errors
    /// [`VideoError::Open`] for a file that cannot be read; [`VideoError::Container`] for one that is
    /// not MP4/MOV; [`VideoError::NoVideo`] when no track is H.264.
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        let file = File::open(path).map_err(|e| VideoError::Open(format!("{}: {e}", path.display())))?;
        let size = file.metadata().map_err(|e| VideoError::Open(e.to_string()))?.len();
        let input: Box<dyn Input> = Box::new(file);
        Self::read(BufReader::new(input), size).map_err(|e| e.about(&path.display().to_string()))
    }

    fn read(input: BoxedInput, size: u64) -> Result<Self, VideoError> {
        let reader = mp4::Mp4Reader::read_header(input, size).map_err(|e| VideoError::Container(e.to_string()))?;
        let mut tracks: Vec<&mp4::Mp4Track> =
            reader.tracks().values().filter(|t| matches!(t.media_type(), Ok(mp4::MediaType::H264))).collect();
        tracks.sort_by_key(|t| t.track_id());
        let track = tracks.first().ok_or(VideoError::NoVideo)?;
        let container = |e: mp4::Error| VideoError::Container(e.to_string());
        let mut parameter_sets = Vec::new();
        for set in
            [track.sequence_parameter_set().map_err(container)?, track.picture_parameter_set().map_err(container)?]
        {
            parameter_sets.extend_from_slice(&START_CODE);
            parameter_sets.extend_from_slice(set);
        }
        let length_size = track
            .trak
            .mdia
            .minf
            .stbl
            .stsd
            .avc1
            .as_ref()
            .map_or(4, |avc1| usize::from(avc1.avcc.length_size_minus_one & 3) + 1);
        let (track_id, timescale, size) =
            (track.track_id(), f64::from(track.timescale()), (track.width(), track.height()));
        let samples = reader.sample_count(track_id).map_err(container)?;
        Ok(Self {
            reader,
            track_id,
            samples,
            next: 1,
            timescale: timescale.max(1.0),
            parameter_sets,
            length_size,
            origin: None,
            size,
        })
    }

    /// Width and height of the pictures, from the track header.
    pub fn size(&self) -> (u16, u16) {
        self.size
    }

    /// The next packet in decoding order, or `None` at the end of the track.
    ///
    /// # Errors
    /// [`VideoError::Container`] for a sample that cannot be read or is not length-prefixed NAL units.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, VideoError> {
        while self.next <= self.samples {
            let id = self.next;
            self.next += 1;
            let sample = self
                .reader
                .read_sample(self.track_id, id)
                .map_err(|e| VideoError::Container(format!("sample {id}: {e}")))?;
            let Some(sample) = sample else { continue };
            let pts = i64::try_from(sample.start_time).unwrap_or(i64::MAX) + i64::from(sample.rendering_offset);
            let origin = *self.origin.get_or_insert(pts);
            let mut data = Vec::with_capacity(sample.bytes.len() + self.parameter_sets.len() + 16);
            if sample.is_sync {
                data.extend_from_slice(&self.parameter_sets);
            }
            append_annex_b(&mut data, &sample.bytes, self.length_size)
                .ok_or_else(|| VideoError::Container(format!("sample {id}: NAL lengths run past its end")))?;
            let pts_s = (pts - origin) as f64 / self.timescale;
            return Ok(Some(Packet { pts_s, codec: Codec::H264, data, key: sample.is_sync }));
        }
        Ok(None)
    }
}

/// Appends the length-prefixed NAL units of `sample` (AVCC) to `out` with start codes (Annex B).
/// `None` when a length runs past the end of the sample.
pub(crate) fn append_annex_b(out: &mut Vec<u8>, sample: &[u8], length_size: usize) -> Option<()> {
    let mut at = 0;
    while at < sample.len() {
        let prefix = sample.get(at..at + length_size)?;
        let length = prefix.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        at += length_size;
        let unit = sample.get(at..at + length)?;
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(unit);
        at += length;
    }
    Some(())
}

/// Decodes packets into frames in presentation order: each picture the decoder gives back takes the
/// earliest presentation time still pending (decoders hand pictures out in display order). Every
/// picture is decoded (H.264 needs them all), but only those at least `interval_s` after the last one
/// kept are turned into pixels and returned.
pub struct Frames {
    decoder: Decoder,
    pending: BinaryHeap<Reverse<PtsKey>>,
    next_index: u64,
    interval_s: f64,
    last_kept_s: Option<f64>,
}

/// A presentation time that orders (times are finite).
#[derive(Debug, Clone, Copy, PartialEq)]
struct PtsKey(f64);

impl Eq for PtsKey {}

impl PartialOrd for PtsKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PtsKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Frames {
    /// A decoder keeping every picture.
    ///
    /// # Errors
    /// [`VideoError::Codec`] when OpenH264 cannot start.
    pub fn new() -> Result<Self, VideoError> {
        Self::at_most(f64::INFINITY)
    }

    /// A decoder keeping at most `per_second` pictures a second of stream time.
    ///
    /// # Errors
    /// [`VideoError::Codec`] when OpenH264 cannot start.
    pub fn at_most(per_second: f64) -> Result<Self, VideoError> {
        // Pictures are taken when the decoder hands them out and the rest at the end: flushing after
        // every packet breaks streams with B-frames.
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| VideoError::Codec(e.to_string()))?;
        let interval_s = if per_second > 0.0 { 1.0 / per_second } else { 0.0 };
        // A little slack, so 10 a second out of 29.97 keeps every third picture.
        Ok(Self { decoder, pending: BinaryHeap::new(), next_index: 0, interval_s: interval_s * 0.9, last_kept_s: None })
    }

    /// Decodes one packet; the frame it completes, if any.
    ///
    /// # Errors
    /// [`VideoError::Codec`] for a packet the decoder refuses.
    pub fn decode(&mut self, packet: &Packet) -> Result<Option<Frame>, VideoError> {
        if packet.codec == Codec::Mjpeg {
            // Every picture stands alone and comes in order: only those kept are decoded.
            if self.last_kept_s.is_some_and(|last| packet.pts_s - last < self.interval_s) {
                return Ok(None);
            }
            let image = image::load_from_memory_with_format(&packet.data, image::ImageFormat::Jpeg)
                .map_err(|e| VideoError::Codec(format!("a JPEG picture: {e}")))?
                .to_rgb8();
            return Ok(Some(self.frame(packet.pts_s, image)));
        }
        self.pending.push(Reverse(PtsKey(packet.pts_s)));
        let decoded = self.decoder.decode(&packet.data).map_err(|e| VideoError::Codec(e.to_string()))?;
        let Some(yuv) = decoded else { return Ok(None) };
        let stream_time_s = self.pending.pop().map_or(0.0, |Reverse(PtsKey(t))| t);
        if self.last_kept_s.is_some_and(|last| stream_time_s - last < self.interval_s) {
            return Ok(None);
        }
        let image = rgb(&yuv)?;
        Ok(Some(self.frame(stream_time_s, image)))
    }

    /// The pictures still in the decoder (the end of the stream).
    ///
    /// # Errors
    /// [`VideoError::Codec`] when the decoder cannot hand them out.
    pub fn finish(&mut self) -> Result<Vec<Frame>, VideoError> {
        let remaining = self.decoder.flush_remaining().map_err(|e| VideoError::Codec(e.to_string()))?;
        let mut images = Vec::with_capacity(remaining.len());
        for yuv in &remaining {
            let stream_time_s = self.pending.pop().map_or(0.0, |Reverse(PtsKey(t))| t);
            if self.last_kept_s.is_none_or(|last| stream_time_s - last >= self.interval_s) {
                self.last_kept_s = Some(stream_time_s);
                images.push((stream_time_s, rgb(yuv)?));
            }
        }
        Ok(images.into_iter().map(|(t, image)| self.frame(t, image)).collect())
    }

    fn frame(&mut self, stream_time_s: f64, image: RgbImage) -> Frame {
        self.last_kept_s = Some(stream_time_s);
        let index = self.next_index;
        self.next_index += 1;
        Frame { index, stream_time_s, image }
    }
}

/// Decodes the video file at `path` on a thread of its own, at most `per_second` frames a second kept,
/// `ahead` frames ahead of the reader: in file mode the decoder waits for the reader, so nothing is
/// dropped and every run sees the same frames. The thread ends at the end of the file, on an error (sent
/// as the last item), or when the receiver is dropped.
///
/// # Errors
/// As [`VideoFile::open`] and [`Frames::new`]; [`VideoError::Open`] when the thread cannot start.
pub fn decode_file(
    path: &Path,
    per_second: f64,
    ahead: usize,
) -> Result<std::sync::mpsc::Receiver<Result<Frame, VideoError>>, VideoError> {
    let mut source = VideoFile::open(path)?;
    let mut frames = Frames::at_most(per_second)?;
    let (sender, receiver) = std::sync::mpsc::sync_channel(ahead.max(1));
    let decode = move || {
        let mut run = || -> Result<(), VideoError> {
            while let Some(packet) = source.next_packet()? {
                if let Some(frame) = frames.decode(&packet)?
                    && sender.send(Ok(frame)).is_err()
                {
                    return Ok(());
                }
            }
            for frame in frames.finish()? {
                if sender.send(Ok(frame)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        };
        if let Err(error) = run() {
            // The reader may be gone already; then nobody needs to hear of it.
            let _ = sender.send(Err(error));
        }
    };
    std::thread::Builder::new()
        .name("facegate-decode".into())
        .spawn(decode)
        .map_err(|e| VideoError::Open(format!("the decoding thread: {e}")))?;
    Ok(receiver)
}

/// A decoded picture's pixels.
fn rgb(yuv: &DecodedYUV<'_>) -> Result<RgbImage, VideoError> {
    let (width, height) = yuv.dimensions();
    let mut rgb = vec![0u8; yuv.rgb8_len()];
    yuv.write_rgb8(&mut rgb);
    RgbImage::from_raw(width as u32, height as u32, rgb)
        .ok_or_else(|| VideoError::Codec(format!("a {width}x{height} picture of the wrong size")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixed_units_become_start_code_units() {
        let mut out = Vec::new();
        append_annex_b(&mut out, &[0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 1, 0x41], 4).expect("well formed");
        assert_eq!(out, [0, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 1, 0x41]);
        assert!(append_annex_b(&mut Vec::new(), &[0, 0, 0, 9, 0x65], 4).is_none(), "a length past the end");
        let mut two = Vec::new();
        append_annex_b(&mut two, &[0, 1, 0x67], 2).expect("two-byte lengths");
        assert_eq!(two, [0, 0, 0, 1, 0x67]);
    }
}
