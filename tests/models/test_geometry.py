"""Boxes found in model-input space land on the right frame pixels, for any frame shape."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgewatch.models.geometry import LETTERBOX_FILL, InputGeometry, prepare_input

frame_sizes = st.tuples(st.integers(16, 1920), st.integers(16, 1920))
input_sizes = st.sampled_from([(640, 640), (320, 320), (416, 416), (300, 300), (224, 224), (640, 384), (96, 160)])


@settings(max_examples=300, deadline=None)
@given(frame=frame_sizes, model=input_sizes, letterbox=st.booleans(), data=st.data())
def test_box_in_model_space_maps_back_within_half_a_pixel(frame, model, letterbox, data):
    geometry = InputGeometry.plan(frame, model, letterbox)
    width, height = frame
    x1 = data.draw(st.floats(0, width - 1))
    y1 = data.draw(st.floats(0, height - 1))
    truth = np.array([[x1, y1, data.draw(st.floats(x1, width)), data.draw(st.floats(y1, height))]])
    found = geometry.to_frame(geometry.to_input(truth))
    assert np.abs(found - truth).max() <= 0.5


@settings(max_examples=60, deadline=None)
@given(frame=frame_sizes, model=input_sizes, letterbox=st.booleans(), data=st.data())
def test_a_rectangle_drawn_in_the_frame_is_found_where_the_mapping_says(frame, model, letterbox, data):
    """Resize the real pixels, find the white rectangle in the model input, map it back: it must be
    where it was drawn, give or take one model-input pixel (what resampling can blur an edge by)."""
    width, height = frame
    geometry = InputGeometry.plan(frame, model, letterbox)
    # a rectangle at least 4 model pixels wide and tall, so it survives the resize
    min_w = int(np.ceil(4 / geometry.scale_x)) + 1
    min_h = int(np.ceil(4 / geometry.scale_y)) + 1
    if min_w >= width or min_h >= height:
        return
    x1 = data.draw(st.integers(0, width - min_w))
    y1 = data.draw(st.integers(0, height - min_h))
    x2 = data.draw(st.integers(x1 + min_w, width))
    y2 = data.draw(st.integers(y1 + min_h, height))
    image = np.zeros((height, width, 3), np.uint8)
    image[y1:y2, x1:x2] = 255
    prepared = prepare_input(image, geometry)
    assert prepared.shape == (model[1], model[0], 3)
    ys, xs = np.nonzero(prepared[:, :, 0] > 127 + (LETTERBOX_FILL > 127) * 100)
    found_in_model = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    found = geometry.to_frame(found_in_model)[0]
    tolerance = np.array([1 / geometry.scale_x + 0.5, 1 / geometry.scale_y + 0.5] * 2)
    assert (np.abs(found - [x1, y1, x2, y2]) <= tolerance).all(), (found, [x1, y1, x2, y2])


def test_letterbox_pads_with_grey_and_keeps_the_aspect_ratio():
    geometry = InputGeometry.plan((1280, 720), (640, 640), letterbox=True)
    prepared = prepare_input(np.zeros((720, 1280, 3), np.uint8), geometry)
    assert geometry.content_size == (640, 360)
    assert (prepared[:140] == LETTERBOX_FILL).all() and (prepared[500:] == LETTERBOX_FILL).all()
    assert (prepared[140:500] == 0).all()


def test_portrait_frame_letterboxes_left_and_right():
    geometry = InputGeometry.plan((720, 1280), (640, 640), letterbox=True)
    assert (geometry.pad_x, geometry.pad_y) == (140.0, 0.0)
    assert geometry.to_frame(np.array([[140, 0, 500, 640]])).tolist() == [[0.0, 0.0, 720.0, 1280.0]]


def test_boxes_outside_the_picture_are_clipped_to_the_frame():
    geometry = InputGeometry.plan((1280, 720), (640, 640), letterbox=True)
    assert geometry.to_frame(np.array([[-20, 100, 700, 600]])).tolist() == [[0.0, 0.0, 1280.0, 720.0]]
