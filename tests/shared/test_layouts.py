"""Layout mappings on a hand-built pose: UTD-MHAD order -> Kinect v1 SDK order -> NTU-25."""

import numpy as np
import pytest

from shared.layouts import (
    KINECT_V1,
    KINECT_V1_TO_NTU25,
    NTU25,
    UTD_TO_KINECT_V1_1BASED,
    kinect_v1_to_ntu25,
    utd_to_kinect_v1,
)

# A person in a T-pose, metres, y up, 3 m from the camera; Kinect v1 SDK order. The arms lie
# along x (which side is +x does not matter to the mapping).
V1_POSE = {
    "HipCenter": (0.0, 0.0, 3.0),
    "Spine": (0.0, 0.1, 3.0),
    "ShoulderCenter": (0.0, 0.5, 3.0),
    "Head": (0.0, 0.7, 3.0),
    "ShoulderLeft": (0.2, 0.45, 3.0),
    "ElbowLeft": (0.45, 0.45, 3.0),
    "WristLeft": (0.7, 0.45, 3.0),
    "HandLeft": (0.8, 0.45, 3.0),
    "ShoulderRight": (-0.2, 0.45, 3.0),
    "ElbowRight": (-0.45, 0.45, 3.0),
    "WristRight": (-0.7, 0.45, 3.0),
    "HandRight": (-0.8, 0.45, 3.0),
    "HipLeft": (0.1, -0.05, 3.0),
    "KneeLeft": (0.1, -0.45, 3.0),
    "AnkleLeft": (0.1, -0.85, 3.0),
    "FootLeft": (0.1, -0.9, 2.9),
    "HipRight": (-0.1, -0.05, 3.0),
    "KneeRight": (-0.1, -0.45, 3.0),
    "AnkleRight": (-0.1, -0.85, 3.0),
    "FootRight": (-0.1, -0.9, 2.9),
}


def v1_pose() -> np.ndarray:
    return np.array([V1_POSE[n] for n in KINECT_V1.joint_names], np.float32)


def ntu(pose: np.ndarray, name: str) -> np.ndarray:
    return pose[NTU25.joint_names.index(name)]


def v1(pose: np.ndarray, name: str) -> np.ndarray:
    return pose[KINECT_V1.joint_names.index(name)]


def test_joints_present_in_both_layouts_are_copied_by_name():
    pose = v1_pose()
    out = kinect_v1_to_ntu25(pose)
    assert out.shape == (25, 3) and out.dtype == np.float32
    same = {"HipCenter": "SpineBase", "Spine": "SpineMid", "ShoulderCenter": "SpineShoulder", "Head": "Head"}
    for side in ("Left", "Right"):
        for part in ("Shoulder", "Elbow", "Wrist", "Hand", "Hip", "Knee", "Ankle", "Foot"):
            same[part + side] = part + side
    assert len(same) == 20  # every Kinect v1 joint lands somewhere
    for v1_name, ntu_name in same.items():
        np.testing.assert_array_equal(ntu(out, ntu_name), v1(pose, v1_name), err_msg=ntu_name)


def test_missing_ntu_joints_are_interpolated_on_the_body():
    pose = v1_pose()
    out = kinect_v1_to_ntu25(pose)
    np.testing.assert_allclose(ntu(out, "Neck"), [0.0, 0.6, 3.0], atol=1e-6)  # between shoulders and head
    for side, sign in (("Left", 1), ("Right", -1)):
        hand, wrist = v1(pose, "Hand" + side), v1(pose, "Wrist" + side)
        tip, thumb = ntu(out, "HandTip" + side), ntu(out, "Thumb" + side)
        # beyond the hand, along the forearm direction, the tip further out than the thumb
        np.testing.assert_allclose(tip, hand + 0.5 * (hand - wrist), atol=1e-6)
        np.testing.assert_allclose(thumb, hand + 0.25 * (hand - wrist), atol=1e-6)
        assert sign * tip[0] > sign * thumb[0] > sign * hand[0]


def test_every_ntu_bone_of_the_mapped_pose_has_a_length():
    out = kinect_v1_to_ntu25(v1_pose())
    for child, parent in NTU25.bone_pairs:
        if child != parent:
            assert np.linalg.norm(out[child] - out[parent]) > 0.01, NTU25.joint_names[child]


def test_mapping_commutes_with_translation_and_keeps_zero_frames_zero():
    # Each NTU joint is an affine combination (weights sum to 1), so translating the input
    # translates the output, and the normalisation to the spine middle means the same thing.
    np.testing.assert_allclose(KINECT_V1_TO_NTU25.sum(axis=1), 1.0, atol=1e-6)
    pose = v1_pose()
    shift = np.array([1.0, -2.0, 0.5], np.float32)
    np.testing.assert_allclose(kinect_v1_to_ntu25(pose + shift), kinect_v1_to_ntu25(pose) + shift, atol=1e-5)
    seq = np.stack([pose, np.zeros_like(pose)])[:, None]  # (T=2, M=1, 20, 3), second frame absent
    mapped = kinect_v1_to_ntu25(seq)
    assert mapped.shape == (2, 1, 25, 3)
    assert not mapped[1].any()


def test_utd_order_maps_to_the_sdk_order():
    pose = v1_pose()
    utd = pose[np.asarray(UTD_TO_KINECT_V1_1BASED) - 1]  # the same pose in UTD-MHAD's order
    assert utd[0].tolist() == pytest.approx(V1_POSE["Head"])  # UTD joint 1 is the head
    assert utd[3].tolist() == pytest.approx(V1_POSE["HipCenter"])  # UTD joint 4 the hip centre
    np.testing.assert_array_equal(utd_to_kinect_v1(utd), pose)
    np.testing.assert_array_equal(utd_to_kinect_v1(np.stack([utd, utd + 1])), np.stack([pose, pose + 1]))
    assert sorted(UTD_TO_KINECT_V1_1BASED) == list(range(1, 21))
