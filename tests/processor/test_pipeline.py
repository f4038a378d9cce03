"""Pipeline text: parsing, canonical form, errors and running."""

import numpy as np
import pytest

from processor.errors import ImageTooLarge, InvalidParameter, InvalidPipeline, UnknownOperation
from processor.jobs import run_pipeline
from processor.operations.geometry import RotateParams
from processor.pipeline import parse_pipeline


def parse(text: str, max_steps: int = 20) -> str:
    return parse_pipeline(text, max_steps=max_steps).canonical()


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("grayscale", "grayscale"),
        (" grayscale | square_crop ", "grayscale|square_crop"),
        ("rotate", "rotate:degrees=90,expand=true,fill=transparent,interpolation=bilinear"),
        (
            "rotate:expand=0,degrees=30.0",
            "rotate:degrees=30,expand=false,fill=transparent,interpolation=bilinear",
        ),
        (
            "rotate: degrees = -12.50 , expand = yes",
            "rotate:degrees=-12.5,expand=true,fill=transparent,interpolation=bilinear",
        ),
        ("low_pass", "low_pass:method=gaussian,sigma=2"),
        ("low_pass:sigma=2.5", "low_pass:method=gaussian,sigma=2.5"),
        ("low_pass:method=ideal", "low_pass:cutoff=0.5,method=ideal"),
        ("low_pass:method=butterworth,order=4", "low_pass:cutoff=0.5,method=butterworth,order=4"),
        ("rotate:fill=#FF8000", "rotate:degrees=90,expand=true,fill=ff8000,interpolation=bilinear"),
        ("rotate:fill=white", "rotate:degrees=90,expand=true,fill=white,interpolation=bilinear"),
        ("flip", "flip:axis=horizontal"),
        ("crop:width=3,height=4", "crop:height=4,width=3,x=0,y=0"),
        ("median:size=5", "median:size=5"),
        ("gradient_x", "gradient_x:mode=signed"),
        ("resize:height=10", "resize:fit=contain,height=10"),
        (
            "rotate:degrees=30|grayscale|low_pass:sigma=2",
            "rotate:degrees=30,expand=true,fill=transparent,interpolation=bilinear|grayscale|low_pass:method=gaussian,sigma=2",
        ),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    assert parse(text) == canonical
    assert parse(parse(text)) == canonical


def test_parsed_steps_carry_typed_params() -> None:
    pipeline = parse_pipeline("rotate:degrees=30,expand=false|gradient_y", max_steps=5)
    first = pipeline.steps[0]
    assert first.operation.name == "rotate"
    assert first.params == RotateParams(degrees=30.0, expand=False)
    assert pipeline.output == "graphic"
    assert parse_pipeline("rotate", max_steps=5).output == "photo"
    assert parse_pipeline("", max_steps=5).steps == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("grayscale||rotate", "step 2 is empty"),
        ("grayscale|", "step 2 is empty"),
        ("rotate:degrees", "step 1 ('rotate:degrees'): expected key=value"),
        ("grayscale|rotate:=30", "step 2 ('rotate:=30'): empty parameter name"),
        ("rotate:degrees=1,degrees=2", "'degrees' given twice"),
        ("rotate:", "expected key=value after ':'"),
        (":degrees=3", "missing operation name"),
        ("nope||rotate", "step 2 is empty"),  # syntax is checked before names
    ],
)
def test_malformed_text_is_invalid_pipeline(text: str, fragment: str) -> None:
    with pytest.raises(InvalidPipeline) as caught:
        parse(text)
    assert fragment in caught.value.message
    assert caught.value.status == 400


def test_too_many_steps() -> None:
    with pytest.raises(InvalidPipeline, match="too many steps: 4, at most 3"):
        parse("grayscale|grayscale|grayscale|grayscale", max_steps=3)
    assert parse("grayscale|grayscale|grayscale", max_steps=3).count("|") == 2


def test_unknown_operation_names_it_and_lists_known() -> None:
    with pytest.raises(UnknownOperation) as caught:
        parse("grayscale|sepia")
    assert caught.value.status == 404
    assert "'sepia'" in caught.value.message
    assert "rotate" in caught.value.message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rotate:degrees=1000", "rotate.degrees: Input should be less than or equal to 360"),
        ("rotate:degrees=-361", "rotate.degrees: Input should be greater than or equal to -360"),
        ("rotate:degrees=nan", "rotate.degrees: Input should be a finite number"),
        ("rotate:degrees=inf", "rotate.degrees: Input should be a finite number"),
        ("rotate:degrees=abc", "rotate.degrees: Input should be a valid number"),
        ("rotate:expand=maybe", "rotate.expand: Input should be a valid boolean"),
        ("rotate:speed=3", "rotate.speed: Extra inputs are not permitted"),
        ("low_pass:sigma=0", "low_pass.sigma: Input should be greater than 0"),
        ("low_pass:sigma=NaN", "low_pass.sigma: Input should be a finite number"),
        ("gradient_x:mode=up", "gradient_x.mode: Input should be 'signed' or 'abs'"),
        ("grayscale:x=1", "grayscale.x: Extra inputs are not permitted"),
        ("resize:fit=cover", "width or height"),
        ("resize:width=9000", "resize.width: Input should be less than or equal to 8192"),
        ("low_pass:method=ideal,sigma=2", "sigma does not apply to method=ideal"),
        ("low_pass:method=gaussian,order=2", "order does not apply to method=gaussian"),
        ("low_pass:method=butterworth,cutoff=0", "low_pass.cutoff: Input should be greater than 0"),
        ("low_pass:method=ideal,cutoff=1.5", "low_pass.cutoff: Input should be less than or equal"),
        ("low_pass:method=box", "low_pass.method: Input should be"),
        ("median:size=4", "median.size: Value error, size must be odd, got 4"),
        ("median:size=1", "median.size: Input should be greater than or equal to 3"),
        ("median:size=3.5", "median.size: Input should be a valid integer"),
        ("crop:width=10", "crop.height: Field required"),
        ("crop:x=-1,width=1,height=1", "crop.x: Input should be greater than or equal to 0"),
        ("rotate:fill=red", "rotate.fill"),
        ("rotate:fill=#12345", "rotate.fill"),
        ("rotate:interpolation=lanczos", "rotate.interpolation"),
        ("flip:axis=diagonal", "flip.axis"),
        ("sharpen:amount=-1", "sharpen.amount: Input should be greater than or equal to 0"),
        ("sharpen:sigma=nan", "sharpen.sigma: Input should be a finite number"),
        ("brightness:offset=1e9", "brightness.offset"),
        ("contrast:factor=-inf", "contrast.factor: Input should be a finite number"),
        ("threshold:level=256", "threshold.level: Input should be less than or equal to 255"),
        ("equalize:strength=2", "equalize.strength: Extra inputs are not permitted"),
    ],
)
def test_bad_parameter_names_op_and_param(text: str, fragment: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse(text)
    assert fragment in caught.value.message
    assert caught.value.status == 422


def test_run_pipeline_applies_steps_in_order() -> None:
    image = np.arange(6 * 4 * 3, dtype=np.uint8).reshape(6, 4, 3)
    pipeline = parse_pipeline("rotate:degrees=90|square_crop", max_steps=5)
    out = run_pipeline(pipeline, image, max_pixels=100)
    assert np.array_equal(out, np.rot90(image)[:, 1:5])


def test_empty_pipeline_is_identity() -> None:
    image = np.ones((3, 3), np.uint8)
    assert run_pipeline(parse_pipeline("", max_steps=5), image, max_pixels=9) is image


def test_run_pipeline_refuses_output_over_max_pixels() -> None:
    image = np.zeros((10, 10), np.uint8)
    pipeline = parse_pipeline("resize:width=20", max_steps=5)
    with pytest.raises(ImageTooLarge, match="resize would produce 20x20"):
        run_pipeline(pipeline, image, max_pixels=399)
    assert run_pipeline(pipeline, image, max_pixels=400).shape == (20, 20)


def test_oversized_rotation_is_refused_before_allocating() -> None:
    # Expanding a 40000x2 strip by 30 degrees would need a ~35000x20000 canvas.
    image = np.zeros((2, 40_000), np.uint8)
    pipeline = parse_pipeline("rotate:degrees=30", max_steps=5)
    with pytest.raises(ImageTooLarge, match="rotate would produce 34643x20002"):
        run_pipeline(pipeline, image, max_pixels=1_000_000)
