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
