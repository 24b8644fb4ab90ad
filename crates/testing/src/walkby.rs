//! A walk-by video made from LFW photos: people walking past a camera, their faces growing from 20 to
//! 120 px, drawn on a plain background and encoded to H.264 by ffmpeg (installed by the test scripts).

use std::path::Path;
use std::process::Command;

/// One person walking past the camera in the generated walk-by video: their photo, where and when.
pub struct Walk {
    /// Who (an LFW name).
    pub person: String,
    /// Whether they are enrolled in the gallery under test.
    pub enrolled: bool,
    /// The photo they walk as.
    pub photo: image::RgbImage,
    /// Seconds from the video's start.
    pub start_s: f64,
    /// The face's centre moves from `from` to `to` (pixels) while it grows from 20 to 120 px.
    pub from: (f64, f64),
    /// See `from`.
    pub to: (f64, f64),
}

/// How long each walk lasts.
pub const WALK_S: f64 = 3.0;
/// The face sizes a walk goes through, pixels.
pub const FACE_PX: (f64, f64) = (20.0, 120.0);

impl Walk {
    /// The face's centre and size (pixels) at `t`, while the walker is in view.
    pub fn face_at(&self, t: f64) -> Option<(f64, f64, f64)> {
        let k = (t - self.start_s) / WALK_S;
        if !(0.0..=1.0).contains(&k) {
            return None;
        }
        let (x, y) = (self.from.0 + (self.to.0 - self.from.0) * k, self.from.1 + (self.to.1 - self.from.1) * k);
        Some((x, y, FACE_PX.0 + (FACE_PX.1 - FACE_PX.0) * k))
    }

    /// When the face first reaches `side` pixels.
    pub fn time_at_size(&self, side: f64) -> f64 {
        self.start_s + WALK_S * ((side - FACE_PX.0) / (FACE_PX.1 - FACE_PX.0)).clamp(0.0, 1.0)
    }
}

/// Draws the walkers on a plain background, frame by frame, into an H.264 MP4 (ffmpeg reads the raw
/// frames from a pipe). LFW's deepfunneled photos are 250 px with the face about 110 px wide in the
/// middle: a photo is scaled so its face has the walk's size, and blended in through a soft round mask.
pub fn walk_by_video(walks: &[Walk], fps: u32, out: &Path) {
    let (width, height) = (1280u32, 720u32);
    let duration = walks.iter().map(|w| w.start_s + WALK_S).fold(0.0, f64::max) + 0.5;
    let mut encoder = Encoder::start(width, height, fps, out);
    let background = image::RgbImage::from_fn(width, height, |x, y| {
        let v = 90 + (x * 60 / width) as u8 + (y * 30 / height) as u8;
        image::Rgb([v, v.saturating_add(8), v.saturating_add(16)])
    });
    for n in 0..(duration * f64::from(fps)) as u32 {
        let t = f64::from(n) / f64::from(fps);
        let mut frame = background.clone();
        for walk in walks {
            let Some((cx, cy, face)) = walk.face_at(t) else { continue };
            let side = (face / 110.0 * 250.0).round().max(8.0) as u32;
            let scaled = image::imageops::resize(&walk.photo, side, side, image::imageops::FilterType::Triangle);
            let (left, top) = (cx - f64::from(side) / 2.0, cy - f64::from(side) / 2.0);
            let radius = f64::from(side) * 0.45;
            for (x, y, pixel) in scaled.enumerate_pixels() {
                let (fx, fy) = (left + f64::from(x), top + f64::from(y));
                if fx < 0.0 || fy < 0.0 || fx >= f64::from(width) || fy >= f64::from(height) {
                    continue;
                }
                let d = ((f64::from(x) - f64::from(side) / 2.0).powi(2)
                    + (f64::from(y) - f64::from(side) / 2.0).powi(2))
                .sqrt();
                let alpha = ((radius - d) / (radius * 0.15)).clamp(0.0, 1.0);
                let under = frame.get_pixel_mut(fx as u32, fy as u32);
                for c in 0..3 {
                    under[c] = (f64::from(pixel[c]) * alpha + f64::from(under[c]) * (1.0 - alpha)).round() as u8;
                }
            }
        }
        encoder.frame(&frame);
    }
    encoder.finish();
}

/// A video of `frames` (image files of one size, shown one after another at `fps`), encoded to H.264
/// by ffmpeg: a camera's view made of a recording's stills.
pub fn video_of_frames(frames: &[std::path::PathBuf], fps: u32, out: &Path) {
    let images: Vec<image::RgbImage> =
        frames.iter().map(|f| image::open(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())).to_rgb8()).collect();
    let first = images.first().expect("at least one frame");
    let mut encoder = Encoder::start(first.width(), first.height(), fps, out);
    for image in &images {
        encoder.frame(image);
    }
    encoder.finish();
}

/// ffmpeg encoding raw RGB frames from a pipe into an H.264 MP4.
struct Encoder {
    process: std::process::Child,
    pipe: std::process::ChildStdin,
}

impl Encoder {
    fn start(width: u32, height: u32, fps: u32, out: &Path) -> Self {
        let mut process = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s"])
            .arg(format!("{width}x{height}"))
            .arg("-r")
            .arg(fps.to_string())
            .args(["-i", "-", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
            .arg(out.to_str().expect("a UTF-8 path"))
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("ffmpeg (scripts/test.sh installs it)");
        let pipe = process.stdin.take().expect("stdin");
        Self { process, pipe }
    }

    fn frame(&mut self, frame: &image::RgbImage) {
        use std::io::Write as _;
        self.pipe.write_all(frame.as_raw()).expect("ffmpeg takes the frame");
    }

    fn finish(self) {
        let Self { mut process, pipe } = self;
        drop(pipe);
        assert!(process.wait().expect("ffmpeg ends").success(), "ffmpeg encodes the video");
    }
}
