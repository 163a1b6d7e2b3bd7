//! Test images, made here: plain JPEG/PNG/WebP, a JPEG carrying EXIF orientation and GPS tags,
//! and a PNG that declares far more pixels than it holds.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};

fn picture(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, 128])
    })
}

fn encode(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(picture(w, h))
        .write_to(&mut out, format)
        .expect("encodes");
    out.into_inner()
}

/// A picture with the structure of a photo — a background gradient, soft blobs of colour,
/// a few hard-edged shapes and some texture — different for every `seed`, the same for the
/// same one.
pub fn photo(seed: u64, w: u32, h: u32) -> RgbImage {
    // SplitMix64: enough randomness for pictures, with no dependency.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64
    };
    let (fw, fh) = (f64::from(w), f64::from(h));
    fn colour(next: &mut impl FnMut() -> f64) -> [f64; 3] {
        [next() * 255.0, next() * 255.0, next() * 255.0]
    }
    let (top, bottom) = (colour(&mut next), colour(&mut next));
    let blobs: Vec<(f64, f64, f64, [f64; 3])> = (0..6)
        .map(|_| {
            (
                next() * fw,
                next() * fh,
                (0.08 + next() * 0.2) * fw.max(fh),
                colour(&mut next),
            )
        })
        .collect();
    // Shapes with edges: rectangles and ellipses (centre, half sizes, colour, ellipse?).
    let shapes: Vec<(f64, f64, f64, f64, [f64; 3], bool)> = (0..5)
        .map(|_| {
            (
                next() * fw,
                next() * fh,
                (0.05 + next() * 0.2) * fw,
                (0.05 + next() * 0.2) * fh,
                colour(&mut next),
                next() < 0.5,
            )
        })
        .collect();
    // Texture: a stripe pattern of random direction and period.
    let (angle, period, depth) = (
        next() * std::f64::consts::PI,
        4.0 + next() * 20.0,
        next() * 40.0,
    );
    let (dx, dy) = (angle.cos(), angle.sin());
    RgbImage::from_fn(w, h, |x, y| {
        let (px_x, px_y) = (f64::from(x), f64::from(y));
        let t = px_y / fh.max(1.0);
        let mut px = [0.0; 3];
        for c in 0..3 {
            px[c] = top[c] * (1.0 - t) + bottom[c] * t;
        }
        for (bx, by, r, col) in &blobs {
            let d2 = (px_x - bx).powi(2) + (px_y - by).powi(2);
            let weight = (-d2 / (2.0 * r * r)).exp();
            for c in 0..3 {
                px[c] = px[c] * (1.0 - weight) + col[c] * weight;
            }
        }
        for (cx, cy, rx, ry, col, ellipse) in &shapes {
            let (u, v) = ((px_x - cx) / rx, (px_y - cy) / ry);
            let inside = if *ellipse {
                u * u + v * v <= 1.0
            } else {
                u.abs() <= 1.0 && v.abs() <= 1.0
            };
            if inside {
                px = *col;
            }
        }
        let stripe = ((px_x * dx + px_y * dy) * std::f64::consts::TAU / period).sin() * depth;
        Rgb(px.map(|v| (v + stripe).clamp(0.0, 255.0) as u8))
    })
}

/// `picture` as a JPEG of this quality.
pub fn jpeg_of(picture: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(picture)
        .expect("encodes");
    out
}

/// A JPEG of [`photo`]`(seed)`.
pub fn photo_jpeg(seed: u64, w: u32, h: u32) -> Vec<u8> {
    jpeg_of(&photo(seed, w, h), 90)
}

pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    encode(w, h, ImageFormat::Jpeg)
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    encode(w, h, ImageFormat::Png)
}

pub fn webp(w: u32, h: u32) -> Vec<u8> {
    encode(w, h, ImageFormat::WebP)
}

/// Latitude 52° 31' 12.34" N, as it appears in the EXIF GPS IFD.
pub const GPS_LATITUDE: [u32; 6] = [52, 1, 31, 1, 1234, 100];

/// A JPEG whose EXIF says "rotate 90° clockwise" (orientation 6) and carries a GPS position.
pub fn jpeg_with_gps_exif(w: u32, h: u32) -> Vec<u8> {
    let mut tiff: Vec<u8> = Vec::new();
    tiff.extend_from_slice(b"II\x2a\x00\x08\x00\x00\x00");
    // IFD0: orientation, GPS IFD pointer.
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    tiff.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD at 38: latitude ref "N", latitude (3 rationals at 68).
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&[0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&[0x02, 0x00, 5, 0, 3, 0, 0, 0, 68, 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    for v in GPS_LATITUDE {
        tiff.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(tiff.len(), 92);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = u16::try_from(app1.len() + 2).expect("fits");
    let plain = jpeg(w, h);
    let mut out = plain[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

/// Whether JPEG bytes carry an EXIF block.
pub fn has_exif(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w == b"Exif\0\0")
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (u32::try_from(data.len()).expect("fits"))
        .to_be_bytes()
        .to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A tiny PNG whose header declares `w`×`h` pixels (a pixel-flood bomb).
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    // A zlib stream of a few zero bytes: far less than the declared size.
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", &[]));
    out
}
