//! AVI (RIFF) files with a Motion JPEG video stream, what many security cameras and capture devices
//! record: the first `vids` stream whose handler or compression is `MJPG`, its pictures (the stream's
//! `NNdc`/`NNdb` chunks of the `movi` list, in file order, inside `rec ` lists and OpenDML `AVIX`
//! continuations too) as [`Packet`]s timed by the stream's rate (`dwScale / dwRate` seconds a frame). An
//! empty chunk is a dropped frame: its time passes. Every size read from the file is checked against
//! what is left of it before anything is allocated.

use std::io::{Read, Seek, SeekFrom};

use crate::VideoError;
use crate::source::{BoxedInput, Codec, Packet};

/// The first bytes of every AVI file (a RIFF file; the form type is checked after).
pub(crate) const RIFF_MAGIC: [u8; 4] = *b"RIFF";

/// The largest picture read (a 4K JPEG at high quality is a few MiB).
const MAX_PICTURE_BYTES: u32 = 32 << 20;

/// The largest header list read whole (`hdrl`).
const MAX_HEADER_BYTES: u32 = 1 << 20;

/// The Motion JPEG stream of an AVI file, as packets in file order.
pub struct AviSource {
    input: BoxedInput,
    /// Bytes in the file.
    file_size: u64,
    /// The stream's chunk id prefix: its number as two ASCII digits.
    stream: [u8; 2],
    /// Seconds a frame.
    frame_s: f64,
    /// The stream's chunks read so far (dropped frames included).
    frames: u64,
    /// Where the current `movi` list ends.
    movi_end: u64,
    /// Where the current RIFF chunk ends (the next one may be an OpenDML `AVIX`).
    riff_end: u64,
    /// Width and height from the stream's format.
    size: (u32, u32),
}

fn container(message: impl Into<String>) -> VideoError {
    VideoError::Container(message.into())
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn fourcc_at(bytes: &[u8], at: usize) -> Option<[u8; 4]> {
    bytes.get(at..at + 4).map(|b| [b[0], b[1], b[2], b[3]])
}

/// The chunks of a list's body: (id, body) in order.
fn chunks(mut body: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut found = Vec::new();
    while body.len() >= 8 {
        let (Some(id), Some(size)) = (fourcc_at(body, 0), u32_at(body, 4)) else { break };
        let size = size as usize;
        let Some(data) = body.get(8..8 + size) else { break };
        found.push((id, data));
        body = body.get(8 + size + size % 2..).unwrap_or_default();
    }
    found
}

/// What the header says of a Motion JPEG video stream: its number, seconds a frame, width and height.
fn mjpeg_stream(hdrl: &[u8]) -> Option<(usize, f64, (u32, u32))> {
    let lists = chunks(hdrl).into_iter().filter(|(id, body)| id == b"LIST" && body.starts_with(b"strl"));
    for (number, (_, strl)) in lists.enumerate() {
        let parts = chunks(&strl[4..]);
        let strh = parts.iter().find(|(id, _)| id == b"strh").map(|(_, body)| *body)?;
        let strf = parts.iter().find(|(id, _)| id == b"strf").map(|(_, body)| *body).unwrap_or_default();
        let is_mjpg = |code: Option<[u8; 4]>| code.is_some_and(|c| c.eq_ignore_ascii_case(b"MJPG"));
        if fourcc_at(strh, 0) != Some(*b"vids") || !(is_mjpg(fourcc_at(strh, 4)) || is_mjpg(fourcc_at(strf, 16))) {
            continue;
        }
        let (scale, rate) = (u32_at(strh, 20)?, u32_at(strh, 24)?);
        let frame_s = if scale > 0 && rate > 0 { f64::from(scale) / f64::from(rate) } else { return None };
        let side = |at| u32_at(strf, at).map(|v| (v as i32).unsigned_abs()).unwrap_or(0);
        return Some((number, frame_s, (side(4), side(8))));
    }
    None
}

impl AviSource {
    /// Reads the header of an AVI file of `file_size` bytes and finds its Motion JPEG stream.
    pub(crate) fn read(mut input: BoxedInput, file_size: u64) -> Result<Self, VideoError> {
        let io = |e: std::io::Error| container(e.to_string());
        let mut head = [0u8; 12];
        input.read_exact(&mut head).map_err(io)?;
        if head[0..4] != RIFF_MAGIC || &head[8..12] != b"AVI " {
            return Err(container("not an AVI file"));
        }
        let riff_end = (8 + u64::from(u32_at(&head, 4).unwrap_or(0))).min(file_size);
        let mut stream = None;
        let mut at = 12u64;
        while at + 12 <= riff_end {
            let mut chunk = [0u8; 12];
            input.seek(SeekFrom::Start(at)).map_err(io)?;
            input.read_exact(&mut chunk).map_err(io)?;
            let size = u64::from(u32_at(&chunk, 4).unwrap_or(0));
            let end = at + 8 + size;
            if end > riff_end {
                return Err(container("a chunk runs past the end of the file"));
            }
            match (&chunk[0..4], &chunk[8..12]) {
                (b"LIST", b"hdrl") => {
                    if !(4..=u64::from(MAX_HEADER_BYTES)).contains(&size) {
                        return Err(container("the header list is too large"));
                    }
                    let mut hdrl = vec![0u8; size as usize - 4];
                    input.read_exact(&mut hdrl).map_err(io)?;
                    stream = mjpeg_stream(&hdrl);
                }
                (b"LIST", b"movi") => {
                    let (number, frame_s, size) = stream.ok_or(VideoError::NoVideo)?;
                    let digits = format!("{:02}", number % 100);
                    let digits = digits.as_bytes();
                    input.seek(SeekFrom::Start(at + 12)).map_err(io)?;
                    return Ok(Self {
                        input,
                        file_size,
                        stream: [digits[0], digits[1]],
                        frame_s,
                        frames: 0,
                        movi_end: end,
                        riff_end,
                        size,
                    });
                }
                _ => {}
            }
            at = end + size % 2;
        }
        Err(VideoError::NoVideo)
    }

    /// Width and height of the stream, as its format declares them.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Moves to the `movi` list of the next OpenDML `AVIX` chunk, if there is one.
    fn next_riff(&mut self) -> Result<bool, VideoError> {
        let io = |e: std::io::Error| container(e.to_string());
        let at = self.riff_end + self.riff_end % 2;
        if at + 24 > self.file_size {
            return Ok(false);
        }
        let mut head = [0u8; 24];
        self.input.seek(SeekFrom::Start(at)).map_err(io)?;
        self.input.read_exact(&mut head).map_err(io)?;
        if head[0..4] != RIFF_MAGIC || &head[8..12] != b"AVIX" || &head[12..16] != b"LIST" || &head[20..24] != b"movi" {
            return Ok(false);
        }
        self.riff_end = (at + 8 + u64::from(u32_at(&head, 4).unwrap_or(0))).min(self.file_size);
        self.movi_end = (at + 20 + u64::from(u32_at(&head, 16).unwrap_or(0))).min(self.riff_end);
        Ok(true)
    }

    /// The next picture, or `None` at the end.
    pub(crate) fn next_packet(&mut self) -> Result<Option<Packet>, VideoError> {
        let io = |e: std::io::Error| container(e.to_string());
        loop {
            let at = self.input.stream_position().map_err(io)?;
            if at + 8 > self.movi_end {
                if self.next_riff()? {
                    continue;
                }
                return Ok(None);
            }
            let mut chunk = [0u8; 8];
            self.input.read_exact(&mut chunk).map_err(io)?;
            let size = u32_at(&chunk, 4).unwrap_or(0);
            if at + 8 + u64::from(size) > self.movi_end {
                return Err(container("a chunk runs past the end of its list"));
            }
            if &chunk[0..4] == b"LIST" {
                // `rec ` groups chunks of one moment: read into it.
                self.input.seek(SeekFrom::Current(4)).map_err(io)?;
                continue;
            }
            let ours = chunk[0..2] == self.stream && matches!(&chunk[2..4], b"dc" | b"db");
            if !ours {
                self.input.seek(SeekFrom::Current(i64::from(size) + i64::from(size % 2))).map_err(io)?;
                continue;
            }
            let pts_s = self.frames as f64 * self.frame_s;
            self.frames += 1;
            if size == 0 {
                continue;
            }
            if size > MAX_PICTURE_BYTES {
                return Err(container(format!("a picture of {size} bytes")));
            }
            let mut data = vec![0u8; size as usize];
            self.input.read_exact(&mut data).map_err(io)?;
            if size % 2 == 1 {
                self.input.seek(SeekFrom::Current(1)).map_err(io)?;
            }
            return Ok(Some(Packet { pts_s, codec: Codec::Mjpeg, data, key: true }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::VideoFile;

    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        if body.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn list(kind: &[u8; 4], parts: &[Vec<u8>]) -> Vec<u8> {
        let mut body = kind.to_vec();
        parts.iter().for_each(|p| body.extend_from_slice(p));
        chunk(b"LIST", &body)
    }

    /// A stream header: type, handler, scale and rate (the rest zero).
    fn strh(kind: &[u8; 4], handler: &[u8; 4], scale: u32, rate: u32) -> Vec<u8> {
        let mut body = vec![0u8; 56];
        body[0..4].copy_from_slice(kind);
        body[4..8].copy_from_slice(handler);
        body[20..24].copy_from_slice(&scale.to_le_bytes());
        body[24..28].copy_from_slice(&rate.to_le_bytes());
        chunk(b"strh", &body)
    }

    fn bitmap_info(width: i32, height: i32, compression: &[u8; 4]) -> Vec<u8> {
        let mut body = vec![0u8; 40];
        body[0..4].copy_from_slice(&40u32.to_le_bytes());
        body[4..8].copy_from_slice(&width.to_le_bytes());
        body[8..12].copy_from_slice(&height.to_le_bytes());
        body[16..20].copy_from_slice(compression);
        chunk(b"strf", &body)
    }

    fn riff(form: &[u8; 4], parts: &[Vec<u8>]) -> Vec<u8> {
        let mut body = form.to_vec();
        parts.iter().for_each(|p| body.extend_from_slice(p));
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn jpeg_of(shade: u8) -> Vec<u8> {
        facegate_core::jpeg(&image::RgbImage::from_pixel(32, 24, image::Rgb([shade, shade, shade]))).expect("jpeg")
    }

    /// An audio stream first (stream 00), the video second (01) at 12.5 frames a second, its pictures in
    /// a `rec ` list and loose, a dropped (empty) frame, an odd-sized chunk, and an OpenDML continuation.
    fn camera_file() -> Vec<u8> {
        let hdrl = list(
            b"hdrl",
            &[
                chunk(b"avih", &[0u8; 56]),
                list(b"strl", &[strh(b"auds", b"\0\0\0\0", 1, 8000), chunk(b"strf", &[0u8; 18])]),
                list(b"strl", &[strh(b"vids", b"mjpg", 2, 25), bitmap_info(32, -24, b"MJPG")]),
            ],
        );
        let movi = list(
            b"movi",
            &[
                chunk(b"00wb", &[1, 2, 3]),
                list(b"rec ", &[chunk(b"01dc", &jpeg_of(10)), chunk(b"00wb", &[4])]),
                chunk(b"01dc", &[]),
                chunk(b"JUNK", &[0; 5]),
                chunk(b"01dc", &jpeg_of(200)),
            ],
        );
        let mut file = riff(b"AVI ", &[hdrl, chunk(b"JUNK", &[0; 7]), movi, chunk(b"idx1", &[0; 16])]);
        file.extend(riff(b"AVIX", &[list(b"movi", &[chunk(b"01db", &jpeg_of(90))])]));
        file
    }

    #[test]
    fn a_cameras_motion_jpeg_stream_is_read_with_its_times() {
        let mut video = VideoFile::from_bytes(camera_file()).expect("an AVI");
        assert_eq!(video.size(), (32, 24), "a top-down bitmap's negative height read as its size");
        let mut read = Vec::new();
        while let Some(packet) = video.next_packet().expect("a packet") {
            assert_eq!((packet.codec, packet.key), (Codec::Mjpeg, true));
            let shade = image::load_from_memory(&packet.data).expect("a JPEG").to_rgb8().get_pixel(0, 0)[0];
            read.push((packet.pts_s, shade));
        }
        let times: Vec<f64> = read.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [0.0, 0.16, 0.24], "frame 1 was dropped; its time passed");
        assert!(read.iter().map(|(_, s)| *s).zip([10u8, 200, 90]).all(|(got, want)| got.abs_diff(want) <= 3));
    }

    #[test]
    fn broken_or_foreign_avi_files_are_refused_without_reading_past_them() {
        let whole = camera_file();
        let error = |bytes: Vec<u8>| VideoFile::from_bytes(bytes).err().map(|e| e.to_string());
        // No Motion JPEG stream: an audio-only file, a video stream of another codec.
        let audio_only = riff(
            b"AVI ",
            &[
                list(b"hdrl", &[list(b"strl", &[strh(b"auds", b"\0\0\0\0", 1, 8000)])]),
                list(b"movi", &[chunk(b"00wb", &[1])]),
            ],
        );
        assert!(error(audio_only).is_some_and(|e| e.contains("no H.264 or Motion JPEG")));
        let xvid = riff(
            b"AVI ",
            &[
                list(b"hdrl", &[list(b"strl", &[strh(b"vids", b"XVID", 1, 25), bitmap_info(32, 24, b"XVID")])]),
                list(b"movi", &[chunk(b"00dc", &[1])]),
            ],
        );
        assert!(error(xvid).is_some());
        // A RIFF file of another form (a WAV file).
        assert!(error(riff(b"WAVE", &[chunk(b"fmt ", &[0; 16])])).is_some());
        // Cut anywhere: an error or fewer pictures, never a panic or a read past the end.
        for cut in (12..whole.len()).step_by(7) {
            if let Ok(mut video) = VideoFile::from_bytes(whole[..cut].to_vec()) {
                while let Ok(Some(_)) = video.next_packet() {}
            }
        }
        // A picture that claims 4 GiB.
        let mut huge = whole.clone();
        let at = huge.windows(4).rposition(|w| w == b"01db").expect("the last picture");
        huge[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut video = VideoFile::from_bytes(huge).expect("the header is fine");
        let outcome = std::iter::from_fn(|| video.next_packet().transpose()).collect::<Result<Vec<_>, _>>();
        assert!(outcome.is_err(), "a chunk past its list is an error");
    }
}
