"""Photo files in the modes and broken states found in real datasets (test helpers)."""

def write_photo(path, mode: str, colour=(200, 40, 40), size=(64, 48)) -> None:
    """A small photo in one of the modes found in the wild (saved in a format that keeps the mode)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = Image.new("RGB", size, colour)
    if mode == "RGB":
        rgb.save(path.with_suffix(".jpg"))
    elif mode == "L":
        rgb.convert("L").save(path.with_suffix(".png"))
    elif mode == "P":
        rgb.convert("P").save(path.with_suffix(".png"), transparency=0)
    elif mode == "RGBA":
        rgba = rgb.convert("RGBA")
        rgba.putpixel((0, 0), (0, 0, 0, 0))  # one transparent pixel
        rgba.save(path.with_suffix(".png"))
    elif mode == "CMYK":
        rgb.convert("CMYK").save(path.with_suffix(".jpg"))
    elif mode == "I;16":
        Image.new("I;16", size, 40000).save(path.with_suffix(".png"))


PHOTO_MODES = ("RGB", "L", "P", "RGBA", "CMYK", "I;16")


def write_broken_files(folder) -> list:
    """A zero-byte JPEG and a truncated one, as in Microsoft's PetImages; returns their paths."""
    import io

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "666.jpg"
    empty.write_bytes(b"")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(buffer, format="JPEG")
    truncated = folder / "11702.jpg"
    truncated.write_bytes(buffer.getvalue()[:200])
    (folder / "Thumbs.db").write_bytes(b"not an image")
    return [empty, truncated]

